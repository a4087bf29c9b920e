"""Loading TF1 ``tf.compat.v1.train.Saver`` checkpoints into params trees.

A TF1 checkpoint maps variable names (``encoder/rnn/lstm_cell/kernel``) to
arrays; a jaxscope params tree is the same map, nested. Loading is a rename:

1. **Bookkeeping entries are dropped**: a checkpoint name that matches one of
   the ``skip`` patterns (:data:`DEFAULT_SKIP`: ``global_step``, Adam's
   ``beta1_power``/``beta2_power``, optimizer slots such as ``<var>/Adam``,
   ``<var>/Adam_1``, ``<var>/Momentum``, ``<var>/adam_m``, moving-average
   shadows ``<var>/ExponentialMovingAverage``, and their numbered copies
   ``Adam_2``, ``beta1_power_1``, …). The patterns are matched against the
   checkpoint's own names, before ``name_map``.
2. **name_map rewrites the rest**: ordered ``(pattern, replacement)`` regex
   rules (a list of pairs, or a dict in insertion order). Every rule applies,
   in order, to the result of the previous ones, as ``re.sub``; a rule whose
   replacement is ``None`` drops the names it matches.
3. **Checked against the model** when ``like`` is given: every model path
   needs exactly one checkpoint entry of the same shape; leaves are cast to
   the template's dtype. Otherwise floats keep their dtype (float64 becomes
   float32 unless ``jax_enable_x64`` is on) or take ``dtype``.

Every error is a typed :mod:`jaxscope.errors` error (a
:class:`~jaxscope.errors.TF1CheckpointError`, or
:class:`~jaxscope.errors.TF1DependencyError` without TensorFlow) naming the
checkpoint, the entry or model path, and the fix; nothing from TensorFlow or
``re`` escapes raw. The arguments (``name_map``, ``skip``, ``like``,
``dtype``) are checked before TensorFlow is imported or a file is read:
``skip`` is a sequence of patterns (one string is refused, not read as its
characters), and a replacement may only refer to groups its pattern has. A
path to one of the checkpoint's files (``model.ckpt-1000.index``) reads that
checkpoint, as does the one file of TF's old V1 format; a path without a
checkpoint lists the checkpoints beside it. A model path
present in several templates of ``like`` (params and their moving average)
is loaded into each. Damaged files (TensorFlow checks each entry's CRC32C)
are a :class:`~jaxscope.errors.TF1CheckpointCorruptError`.

TensorFlow is needed only here, and imported only when a checkpoint is read:
``pip install 'jaxscope[tf]'``.

>>> rules = [(r"^seq2seq/", ""), (r"/rnn/lstm_cell/", "/lstm/")]
>>> js.tf1.rename("seq2seq/encoder/rnn/lstm_cell/kernel", rules)
'encoder/lstm/kernel'
>>> js.tf1.is_bookkeeping("encoder/rnn/lstm_cell/kernel/Adam_1")
True
"""

from jaxscope._src.errors import (
    TF1ArgumentError,
    TF1CheckpointCorruptError,
    TF1CheckpointError,
    TF1CheckpointMismatchError,
    TF1CheckpointNotFoundError,
    TF1DependencyError,
    TF1NameMapError,
    TF1UnsupportedEntryError,
)
from jaxscope._src.tf1 import (
    DEFAULT_SKIP,
    TF1LoadReport,
    is_bookkeeping,
    load_tf1_checkpoint,
    rename,
)

__all__ = [
    "DEFAULT_SKIP",
    "TF1ArgumentError",
    "TF1CheckpointCorruptError",
    "TF1CheckpointError",
    "TF1CheckpointMismatchError",
    "TF1CheckpointNotFoundError",
    "TF1DependencyError",
    "TF1LoadReport",
    "TF1NameMapError",
    "TF1UnsupportedEntryError",
    "is_bookkeeping",
    "load_tf1_checkpoint",
    "rename",
]
