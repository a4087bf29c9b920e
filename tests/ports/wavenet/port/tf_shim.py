"""The TensorFlow 1 names that the WaveNet port calls, written with JAX.

The port replaces ``import tensorflow as tf`` with this module. It holds what
TF1 has and jaxscope does not: TF's ops, in ``jax.numpy``/``jax.lax``, with
TF1's semantics for the arguments the model passes, and :func:`Variable`.
Where jaxscope has the TF1 API itself (``variable_scope``, ``name_scope``,
``get_variable``), the port calls jaxscope by name, so that every use of it
shows in ``port.diff``.

Shapes are static in JAX: :func:`shape` returns Python ints where TF returns
a tensor, and the model's shape arithmetic runs in Python.
"""

import builtins
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import optax

import jaxscope as js

float32 = jnp.float32
float64 = jnp.float64  # float32 unless jax_enable_x64 is on (see cast)
int32 = jnp.int32

abs = jnp.abs
add = jnp.add
log = jnp.log
matmul = jnp.matmul
minimum = jnp.minimum
reduce_mean = jnp.mean
sigmoid = jax.nn.sigmoid
sign = jnp.sign
tanh = jnp.tanh


def shape(input):
    """``tf.shape``: the static shape, a tuple of ints."""
    return jnp.shape(input)


def cast(x, dtype):
    """``tf.cast``; float to int truncates toward zero, as in TF. A dtype JAX
    does not enable (float64 without x64) becomes its canonical one."""
    return jnp.asarray(x).astype(jax.dtypes.canonicalize_dtype(dtype))


def div(x, y):
    """``tf.div`` (TF1): floor division for integers, true division otherwise."""
    if jnp.issubdtype(jnp.result_type(x, y), jnp.integer):
        return x // y
    return x / y


def pad(tensor, paddings):
    """``tf.pad`` with zeros."""
    return jnp.pad(tensor, paddings)


def reshape(tensor, shape):
    return jnp.reshape(tensor, tuple(shape))


def transpose(a, perm):
    return jnp.transpose(a, perm)


def slice(input_, begin, size):
    """``tf.slice``: ``size[i] == -1`` takes everything from ``begin[i]`` on."""
    return input_[
        tuple(
            builtins.slice(b, None if s == -1 else b + s) for b, s in zip(begin, size, strict=True)
        )
    ]


def one_hot(indices, depth, dtype=float32):
    return jax.nn.one_hot(indices, depth, dtype=dtype)


def _conv1d(value, filters, stride, padding, name=None):
    """``tf.nn.conv1d``: ``value`` is [batch, width, in], ``filters`` [width, in, out]."""
    return jax.lax.conv_general_dilated(
        value, filters, (stride,), padding, dimension_numbers=("NWC", "WIO", "NWC")
    )


def _embedding_lookup(params, ids):
    return jnp.take(params, ids, axis=0)


def _softmax_cross_entropy_with_logits(*, labels, logits):
    """TF1's version takes its arguments by keyword only, as here."""
    return optax.softmax_cross_entropy(logits, labels)


nn = SimpleNamespace(
    conv1d=_conv1d,
    embedding_lookup=_embedding_lookup,
    relu=jax.nn.relu,
    softmax=jax.nn.softmax,
    softmax_cross_entropy_with_logits=_softmax_cross_entropy_with_logits,
)


def _scalar_summary(name, tensor):
    """jaxscope has no summary collection: a summary records nothing (the
    caller returns the value, e.g. the loss, to log it)."""
    del name, tensor


summary = SimpleNamespace(scalar=_scalar_summary)


class constant_initializer:
    """``tf.constant_initializer``: called with a shape, gives the array."""

    def __init__(self, value=0, dtype=float32):
        self.value, self.dtype = value, dtype

    def __call__(self, shape, dtype=None, partition_info=None):
        return jnp.full(shape, self.value, dtype or self.dtype)


def _xavier_initializer_conv2d():
    """``tf.contrib.layers.xavier_initializer_conv2d()`` (uniform): Glorot-uniform,
    fans counting the filter width, as JAX's initializer counts them. It is a
    JAX initializer ``init(key, shape, dtype)``: the port hands it to
    ``js.get_variable``, which derives the key from the variable's name."""
    return jax.nn.initializers.glorot_uniform()


contrib = SimpleNamespace(
    layers=SimpleNamespace(xavier_initializer_conv2d=_xavier_initializer_conv2d)
)


def Variable(initial_value, trainable=True, name=None):
    """TF1's ``tf.Variable``, which jaxscope lacks: a variable that is never
    shared, named ``name`` (default ``"Variable"``) in the current scope, or
    ``name_1``, ``name_2``, ... when that name is taken in this call, as TF
    uniquifies it. ``trainable`` counts by its truth, as in TF.

    TF names it in the current op-name scope, which ``variable_scope`` opens
    with the same name, so the two agree inside ``variable_scope`` blocks; it
    is looked up rather than created under ``reuse=True`` (TF creates).
    """
    base, suffix = name or "Variable", 0
    while True:
        candidate = f"{base}_{suffix}" if suffix else base
        try:
            return js.get_variable(candidate, initializer=initial_value, trainable=bool(trainable))
        except js.errors.VariableExistsError:
            suffix += 1
