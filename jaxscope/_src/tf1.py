"""Loading TF1 Saver checkpoints; documented in :mod:`jaxscope.tf1`."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from jaxscope._src import renaming
from jaxscope._src.errors import (
    TF1ArgumentError,
    TF1CheckpointCorruptError,
    TF1CheckpointMismatchError,
    TF1CheckpointNotFoundError,
    TF1DependencyError,
    TF1NameMapError,
    TF1UnsupportedEntryError,
)

_SLOTS = (
    "Adam|Adagrad|AdagradDA|Adadelta|Ftrl|Momentum|RMSProp|ProximalAdagrad"
    "|ProximalGradientDescent|LazyAdam|adam_m|adam_v|adafactor_v|adafactor_vr|adafactor_vc"
)

DEFAULT_SKIP: tuple[str, ...] = (
    r"(^|/)global_step$",
    r"(^|/)beta[12]_power(_\d+)?$",
    rf"/({_SLOTS})(_\d+)?$",
    r"/ExponentialMovingAverage(_\d+)?$",
    r"(^|/)(current_loss_scale|good_steps)$",
    r"^_CHECKPOINTABLE_OBJECT_GRAPH$",
)
"""Patterns (``re.search``) of TF1 checkpoint names that are training
bookkeeping rather than model variables: the global step, Adam's power
accumulators, optimizer slot variables (``<var>/<Optimizer>`` and numbered
``<var>/<Optimizer>_1``, …), moving-average shadows, loss-scale counters."""

TF1LoadReport = renaming.LoadReport
"""What :func:`load_tf1_checkpoint` did with each name (``loaded``,
``skipped``, ``unused``, ``missing``, ``renamed``, ``mismatched``, ``cast``);
:func:`jaxscope.from_haiku` returns the same class."""


def _import_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError as e:
        raise TF1DependencyError(function="js.load_tf1_checkpoint") from e
    return tf


def rename(name: str, name_map: renaming.NameMap | None) -> str | None:
    """The name ``name_map`` turns checkpoint name ``name`` into, or ``None``
    if a rule with replacement ``None`` drops it.

    Every rule applies in order, to the result of the previous ones
    (``re.sub``), so rules compose like a ``sed`` script.

    >>> js.tf1.rename("model/dense/kernel", {r"^model/": "", r"^dense/": "out/"})
    'out/kernel'
    >>> js.tf1.rename("model/step_counter", [(r"step_counter$", None)]) is None
    True
    """
    return renaming.rename(name, renaming.compile_rules(name_map, TF1NameMapError))


def is_bookkeeping(name: str, skip: Iterable[str] = DEFAULT_SKIP) -> bool:
    """Whether checkpoint name ``name`` matches a ``skip`` pattern (by
    default :data:`DEFAULT_SKIP`: the global step, optimizer slots, …).

    >>> js.tf1.is_bookkeeping("global_step"), js.tf1.is_bookkeeping("dense_1/kernel")
    (True, False)
    """
    return renaming.skipped(name, renaming.compile_skip(skip, TF1NameMapError))


_FILE_SUFFIX = re.compile(r"\.(index|data-\d{5}-of-\d{5}|meta)$")


def _prefix(path: Any) -> str:
    """The checkpoint to read: ``path`` itself (a prefix or a directory), or
    the prefix of the checkpoint file it names (``model.ckpt-1000.index``).
    A path with no checkpoint is a :class:`TF1CheckpointNotFoundError` that
    lists the checkpoints beside it."""
    if not isinstance(path, str | os.PathLike):
        raise TF1ArgumentError(
            argument="path",
            problem="must be a checkpoint prefix or directory (str or os.PathLike), got "
            f"{type(path).__name__}",
            fix="e.g. js.load_tf1_checkpoint('ckpt/model.ckpt-1000')",
        )
    path = os.fspath(path)
    if os.path.isdir(path) or os.path.isfile(path + ".index"):
        return path
    prefix = _FILE_SUFFIX.sub("", path)
    if prefix != path and os.path.isfile(prefix + ".index"):
        return prefix  # a file of the checkpoint: its prefix is meant
    if prefix == path and os.path.isfile(path):
        return path  # a checkpoint in TF's V1 format: one file, read by TensorFlow
    data_files = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    if data_files:
        raise TF1CheckpointCorruptError(path=prefix, data_file=os.path.basename(data_files[0]))
    folder = os.path.dirname(path) or "."
    try:
        found = sorted(n[: -len(".index")] for n in os.listdir(folder) if n.endswith(".index"))
    except OSError:
        found = []
    raise TF1CheckpointNotFoundError(path=path, found=found)


def _reader(tf: Any, path: str) -> tuple[Any, dict, dict]:
    """TensorFlow's reader of the checkpoint, and its name -> shape and name
    -> dtype maps. TensorFlow's errors become typed ones."""
    try:
        reader = tf.train.load_checkpoint(path)
        return reader, reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    except Exception as e:  # TF raises OpErrors, ValueError, IndexError, ...
        if os.path.isdir(path) and tf.train.latest_checkpoint(path) is None:
            raise TF1CheckpointNotFoundError(path=path, directory=True) from e
        raise TF1CheckpointCorruptError(path=path, cause=e) from e


def _read_tensor(reader: Any, path: str, name: str) -> np.ndarray:
    try:
        return np.asarray(reader.get_tensor(name))
    except Exception as e:  # DataLossError (checksum), OutOfRangeError, IndexError, ...
        raise TF1CheckpointCorruptError(path=path, entry=name, cause=e) from e


def load_tf1_checkpoint(
    path: str | os.PathLike,
    name_map: renaming.NameMap | None = None,
    *,
    like: Any = None,
    skip: Iterable[str] = DEFAULT_SKIP,
    dtype: Any = None,
    strict: bool = True,
    return_report: bool = False,
) -> Any:
    """Reads a TF1 ``tf.compat.v1.train.Saver`` checkpoint into a params tree.

    Each checkpoint entry becomes the leaf at its name: ``enc/rnn/lstm_cell/kernel``
    is ``params["enc"]["rnn"]["lstm_cell"]["kernel"]``, after dropping
    bookkeeping entries (``skip``) and renaming (``name_map``); see the
    module documentation for the rules.

    Args:
        path: the checkpoint prefix (``.../model.ckpt-1000``), one of its
            files (``.index``, ``.data-00000-of-00001``: the prefix is read),
            or a directory (its latest checkpoint is read).
        name_map: ordered regex rules ``(pattern, replacement)``, as a list of
            pairs or a dict; each applies in turn as ``re.sub``; a
            replacement ``None`` drops the matching names.
        like: the model's params tree, ``(params, state)``, or their
            ``jax.eval_shape``: every path must get exactly one entry of the
            same shape, cast to the template's dtype (and placed with its
            sharding, when it has one). The result has the template's
            structure; a path in several templates is loaded into each.
        skip: regex patterns of checkpoint names to drop, matched before
            ``name_map`` (default :data:`DEFAULT_SKIP`; ``()`` keeps all).
        dtype: without ``like``, the dtype for floating entries (default:
            their own; float64 is float32 unless x64 is enabled).
        strict: with ``like``, raise on missing model paths and unused
            checkpoint names. ``False`` loads what matches and leaves the
            template's leaf where nothing does. Shape and dtype-kind
            mismatches raise either way.
        return_report: also return a :class:`TF1LoadReport`.

    Returns:
        The params tree (a tuple of trees if ``like`` is a tuple), or
        ``(tree, report)`` with ``return_report=True``.

    Raises:
        TF1DependencyError: TensorFlow is not installed (``pip install 'jaxscope[tf]'``).
        TF1ArgumentError: ``path``, ``like`` or ``dtype`` is malformed.
        TF1NameMapError: ``name_map`` or ``skip`` is malformed, or the names
            it makes do not form a params tree.
        TF1CheckpointNotFoundError: no checkpoint at ``path``.
        TF1CheckpointCorruptError: the checkpoint's files cannot be read.
        TF1UnsupportedEntryError: an entry holds strings.
        TF1CheckpointMismatchError: with ``like``, the checkpoint does not
            match; the message names the model paths and checkpoint names.

    >>> params = js.load_tf1_checkpoint(  # doctest: +SKIP
    ...     "ckpt/model.ckpt-1000",
    ...     name_map=[(r"^seq2seq/", ""), (r"/rnn/lstm_cell/", "/lstm/")],
    ...     like=jax.eval_shape(f.init, 0, tokens),
    ... )
    """
    # Every argument is checked before TensorFlow is imported or a file read.
    rules = renaming.compile_rules(name_map, TF1NameMapError)
    skip_patterns = renaming.compile_skip(skip, TF1NameMapError)
    dtype = renaming.dtype_arg(dtype, TF1ArgumentError)
    templates, single = (
        renaming.flat_templates(like, TF1ArgumentError) if like is not None else ([], True)
    )
    path = _prefix(path)
    tf = _import_tensorflow()
    reader, shapes, dtypes = _reader(tf, path)
    entries = {
        name: renaming.Entry(
            tuple(shapes[name]), np.dtype(dtypes[name].as_numpy_dtype), dtypes[name].name
        )
        for name in shapes
    }
    source = renaming.Source(
        entry="checkpoint entry",
        entries="checkpoint entries",
        side="checkpoint",
        where=f" in {path}",
        mismatch_fields={"path": path},
        below_hint=(
            " (optimizer slots such as <var>/Adam sit below their variable; the default "
            "skip drops them)"
        ),
        name_map_error=TF1NameMapError,
        mismatch_error=TF1CheckpointMismatchError,
    )
    plan = renaming.plan(sorted(shapes), rules, skip_patterns, source)

    def read(name: str) -> np.ndarray:
        return _read_tensor(reader, path, name)

    if like is None:
        for new, name in plan.taken.items():
            if renaming.kind(entries[name].dtype) == "other":
                raise TF1UnsupportedEntryError(
                    path=path, entry=name, model_path=new, dtype=entries[name].dtype_name
                )
        tree, report = renaming.load_all(plan, entries, read, dtype)
    else:
        tree, report = renaming.load_like(
            plan, entries, read, like, templates, single, strict=strict, source=source
        )
    return (tree, report) if return_report else tree
