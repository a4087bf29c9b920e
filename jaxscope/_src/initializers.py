"""TF1's initializers on ``jax.nn.initializers``; documented in :mod:`jaxscope.initializers`."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import initializers as jinit

from jaxscope._src import errors, rng

Initializer = Callable[[Any, tuple[int, ...], Any], jax.Array]

zeros: Initializer = jinit.zeros
"""Initializes to 0 (TF1 ``tf.zeros_initializer()``)."""

ones: Initializer = jinit.ones
"""Initializes to 1 (TF1 ``tf.ones_initializer()``)."""

# What the built-in initializers promise, for a cheaper init: the keyless
# ones ignore their key (none is derived for them); the pure ones are
# functions of the key, shape and dtype alone, so a traced init stages each
# as one call (see ``staged``).
_KEYLESS: weakref.WeakSet = weakref.WeakSet([zeros, ones])
_PURE: weakref.WeakSet = weakref.WeakSet()


def _pure(init: Initializer) -> Initializer:
    _PURE.add(init)
    return init


def _shared(factory: Callable[..., Initializer]) -> Callable[..., Initializer]:
    """``factory`` returning the same initializer for the same (hashable)
    arguments: a model that builds its initializer in every layer then
    stages it once per shape and dtype."""
    cached = functools.lru_cache(maxsize=256, typed=True)(factory)

    @functools.wraps(factory)
    def make(*args, **kwargs):
        try:
            return cached(*args, **kwargs)
        except TypeError:  # an unhashable argument (or a wrong call, raised again)
            return factory(*args, **kwargs)

    return make


def _member(init: Any, members: weakref.WeakSet) -> bool:
    try:
        return init in members
    except TypeError:  # an unhashable callable
        return False


def keyless(init: Any) -> bool:
    """Whether ``init`` is a built-in initializer that ignores its key."""
    return _member(init, _KEYLESS)


@functools.lru_cache(maxsize=1024)
def _staged(init: Initializer, shape: tuple, dtype: Any) -> Callable:
    @jax.jit
    def initial(variables_key: jax.Array, hi: Any, lo: Any) -> jax.Array:
        return init(rng.fold_words(variables_key, hi, lo), shape, dtype)

    return initial


def staged(init: Any, shape: tuple, dtype: Any) -> Callable | None:
    """For a pure built-in initializer: ``initial(variables_key, hi, lo)``,
    ``init`` of the key folded with the name's hash words as one jitted
    call, traced once per initializer, shape and dtype (under an outer trace
    the operations, and so the values, are those of the unstaged calls);
    ``None`` for any other initializer."""
    return _staged(init, shape, dtype) if _member(init, _PURE) else None


def constant(value: Any) -> Initializer:
    """TF1 ``tf.constant_initializer(value)``.

    A scalar fills the variable; an array-like of the variable's shape is
    used as is, and one with the same number of elements is reshaped (as in
    TF1).
    """
    value = np.asarray(value)

    def init(key, shape, dtype=jnp.float32):
        del key
        shape = tuple(shape)
        if value.ndim == 0:
            return jnp.full(shape, value, dtype)
        if value.size != int(np.prod(shape)):
            raise errors.InitializerError(
                function="js.initializers.constant",
                problem=f"cannot fill a variable of shape {tuple(shape)} with a value of "
                f"shape {value.shape} ({value.size} elements)",
                fix="give a scalar, or a value with as many elements as the variable",
            )
        return jnp.asarray(value.reshape(shape), dtype)

    _KEYLESS.add(init)
    return init


def _check_floating(what: str, shape: Any, dtype: Any) -> None:
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise errors.InitializerError(
            function=what,
            problem=f"fills floating-point variables, but dtype {jnp.dtype(dtype)} was asked "
            f"for (shape {tuple(shape)})",
            fix="use js.initializers.zeros or constant(...) for integer variables, or a "
            "floating dtype",
        )


@_shared
def random_normal(mean: float = 0.0, stddev: float = 1.0) -> Initializer:
    """TF1 ``tf.random_normal_initializer(mean, stddev)``."""
    base = jinit.normal(stddev)

    def init(key, shape, dtype=jnp.float32):
        _check_floating("js.initializers.random_normal", shape, dtype)
        return base(key, shape, dtype) + jnp.asarray(mean, dtype)

    return _pure(init)


@_shared
def truncated_normal(mean: float = 0.0, stddev: float = 1.0) -> Initializer:
    """TF1 ``tf.truncated_normal_initializer(mean, stddev)``: a normal cut at
    two standard deviations from the mean."""
    base = jinit.truncated_normal(stddev)

    def init(key, shape, dtype=jnp.float32):
        _check_floating("js.initializers.truncated_normal", shape, dtype)
        return base(key, shape, dtype) + jnp.asarray(mean, dtype)

    return _pure(init)


@_shared
def random_uniform(minval: float = 0.0, maxval: float | None = None) -> Initializer:
    """TF1 ``tf.random_uniform_initializer(minval, maxval)``: uniform in
    ``[minval, maxval)``; ``maxval`` defaults to 1."""
    maxval = 1.0 if maxval is None else maxval

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, minval, maxval)

    return _pure(init)


@_shared
def variance_scaling(
    scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
) -> Initializer:
    """TF1 ``tf.variance_scaling_initializer(scale, mode, distribution)``.

    ``mode`` is ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``; ``distribution``
    is ``"truncated_normal"`` (TF1's ``"normal"`` means the same),
    ``"untruncated_normal"`` or ``"uniform"``.
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise errors.ArgumentError(
            function="js.initializers.variance_scaling",
            argument="mode",
            problem=f"must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}",
            fix="pass one of those (TF1's default is 'fan_in')",
        )
    # TF1's "normal" is truncated; its "untruncated_normal" is jax's "normal".
    distribution = {"normal": "truncated_normal", "untruncated_normal": "normal"}.get(
        distribution, distribution
    )
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise errors.ArgumentError(
            function="js.initializers.variance_scaling",
            argument="distribution",
            problem="must be 'truncated_normal' (or 'normal'), 'untruncated_normal' or "
            f"'uniform', got {distribution!r}",
            fix="pass one of those (TF1's default is 'truncated_normal')",
        )
    matrix = jinit.variance_scaling(scale, mode, distribution)
    # TF1 takes a vector's fans to be its length and a scalar's to be 1;
    # empty in/out axes make jax count every element as receptive field.
    vector = jinit.variance_scaling(scale, mode, distribution, in_axis=(), out_axis=())

    def init(key, shape, dtype=jnp.float32):
        _check_floating("js.initializers.variance_scaling (glorot_*)", shape, dtype)
        if 0 in shape:  # no values, and fans of zero: TF1 creates it
            return jnp.zeros(shape, dtype)
        return (matrix if len(shape) >= 2 else vector)(key, shape, dtype)

    return _pure(init)


def glorot_uniform() -> Initializer:
    """TF1 ``tf.glorot_uniform_initializer()``, the default for floating
    variables."""
    return variance_scaling(1.0, "fan_avg", "uniform")


def glorot_normal() -> Initializer:
    """TF1 ``tf.glorot_normal_initializer()`` (truncated normal)."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal")


@_shared
def orthogonal(gain: float = 1.0) -> Initializer:
    """TF1 ``tf.orthogonal_initializer(gain)``; needs at least two dims.

    Low-precision dtypes are computed in float32 and cast (JAX's QR has no
    float16 kernel)."""
    base = jinit.orthogonal(gain)

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise errors.InitializerError(
                function="js.initializers.orthogonal",
                problem=f"needs a shape of at least two dims, got {tuple(shape)} (as in TF1)",
                fix="use another initializer for vectors and scalars",
            )
        _check_floating("js.initializers.orthogonal", shape, dtype)
        if jnp.dtype(dtype).itemsize < 4 and jnp.issubdtype(dtype, jnp.floating):
            return base(key, shape, jnp.float32).astype(dtype)
        return base(key, shape, dtype)

    return _pure(init)


_glorot_uniform = glorot_uniform()


def default_for(dtype: Any) -> Initializer:
    """TF1's default: Glorot-uniform for floating dtypes, zeros otherwise."""
    if jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating):
        return _glorot_uniform
    return zeros
