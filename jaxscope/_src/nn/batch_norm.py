"""``batch_norm``: TF1's ``tf.layers.batch_normalization`` as a function.

The moving statistics are ``trainable=False`` variables, so a model that
uses the layer runs under ``js.transform_with_state``; in training, their
updates (TF1's ``UPDATE_OPS``, which a TF1 training loop had to run by hand)
are made with ``js.assign`` and come back in ``apply``'s new state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import initializers
from jaxscope._src.nn.args import static_flag
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import assign, get_variable

_FUSED_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32)


def _uses_fused_kernel(x: jax.Array, axes: tuple[int, ...], fused: bool | None) -> bool:
    """Whether TF1's layer would run its fused kernel on ``x`` (a 4-D or 5-D
    input normalized over its first or last axis only)."""
    if fused is False or len(axes) != 1 or x.ndim not in (4, 5):
        return False
    return axes[0] in (1, x.ndim - 1) and x.dtype in _FUSED_DTYPES


def _moving_average(variable: jax.Array, value: jax.Array, momentum: float) -> jax.Array:
    # TF1's update op: variable -= (variable - value) * (1 - momentum).
    return variable - (variable - value.astype(variable.dtype)) * (1.0 - momentum)


def batch_norm(
    x: jax.Array,
    axis: int | Sequence[int] = -1,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    center: bool = True,
    scale: bool = True,
    beta_initializer: Any = initializers.zeros,
    gamma_initializer: Any = initializers.ones,
    moving_mean_initializer: Any = initializers.zeros,
    moving_variance_initializer: Any = initializers.ones,
    *,
    is_training: bool,
    fused: bool | None = None,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """Batch normalization (Ioffe and Szegedy, 2015), as TF1's
    ``tf.layers.batch_normalization`` computes it, with its defaults
    (``momentum=0.99``, ``epsilon=1e-3``).

    In training, ``x`` is normalized with the batch's mean and (biased)
    variance over every axis but ``axis``, and the moving statistics move
    towards them: ``moving -= (moving - batch) * (1 - momentum)``. Otherwise
    ``x`` is normalized with the moving statistics, which stay as they are.
    Then ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta``.

    As in TF1, the moving variance is updated with the *unbiased* batch
    variance (``n / (n - 1)`` times the biased one) where TF1 uses its fused
    kernel: 4-D and 5-D inputs normalized over their channel axis (first or
    last), unless ``fused=False``. Elsewhere (e.g. a ``[batch, features]``
    input) it is updated with the biased variance; the fused kernel also
    raises ``epsilon`` to at least ``1.001e-5``.

    Variables (TF1's names): ``<name>/gamma`` (ones, with ``scale``) and
    ``<name>/beta`` (zeros, with ``center``) in ``params``;
    ``<name>/moving_mean`` (zeros) and ``<name>/moving_variance`` (ones) in
    ``state`` (``trainable=False``), all of shape ``[x.shape[axis]]`` (with
    several axes, ``x``'s shape with 1 elsewhere, as in TF1). The
    default name is a uniquified ``batch_normalization``.

    ``is_training`` is required (TF1's ``training=False`` default silently
    evaluated in ports that forgot it); it is a Python bool.

    Args:
        x: the inputs.
        axis: the feature (channel) axis or axes; ``1`` for
            ``channels_first`` images.
        momentum: of the moving averages.
        epsilon: added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: the variables' initializers.
        is_training: normalize with the batch's statistics and update the
            moving ones (``True``), or use the moving ones (``False``).
        fused: ``False`` updates the moving variance with the biased
            variance even where TF1's default would use the fused kernel
            (TF1's ``fused=False``); ``None`` and ``True`` follow TF1.
        name: the variable scope; ``None`` gives a uniquified
            ``batch_normalization``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's
            variables (a discriminator called on real and fake batches).

    Returns:
        The normalized ``x``.

    >>> def model(x, is_training):
    ...     return js.nn.batch_norm(x, is_training=is_training)
    >>> f = js.transform_with_state(model)
    >>> x = jnp.array([[0.0, 10.0], [2.0, 20.0]])
    >>> params, state = f.init(0, x, True)
    >>> sorted(params["batch_normalization"]), sorted(state["batch_normalization"])
    (['beta', 'gamma'], ['moving_mean', 'moving_variance'])
    >>> y, state = f.apply(params, state, x, True)
    >>> y.round(2).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> [round(v, 3) for v in state["batch_normalization"]["moving_mean"].tolist()]
    [0.01, 0.15]
    """
    training = static_flag(is_training, "js.nn.batch_norm")
    axes = tuple(sorted(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)))
    broadcast = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    shape = [x.shape[axes[0]]] if len(axes) == 1 else broadcast  # TF1's parameter shapes
    reduce_axes = tuple(a for a in range(x.ndim) if a not in axes)
    fused_kernel = _uses_fused_kernel(x, axes, fused)
    if fused_kernel:
        epsilon = max(epsilon, 1.001e-5)
    with layer_scope(name, "batch_normalization", reuse):
        gamma = get_variable("gamma", shape, initializer=gamma_initializer) if scale else None
        beta = get_variable("beta", shape, initializer=beta_initializer) if center else None
        moving_mean = get_variable(
            "moving_mean", shape, initializer=moving_mean_initializer, trainable=False
        )
        moving_variance = get_variable(
            "moving_variance", shape, initializer=moving_variance_initializer, trainable=False
        )
        # The statistics and the affine map in at least float32, as TF1's fused
        # kernel computes them for float16 inputs: in bfloat16, x * inv + offset
        # would cancel the normalized value away.
        wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if training:
            mean = jnp.mean(wide, axis=reduce_axes).reshape(shape)
            centered = wide - jax.lax.stop_gradient(mean).reshape(broadcast)
            variance = jnp.mean(jnp.square(centered), axis=reduce_axes).reshape(shape)
            count = x.size // math.prod(shape)
            update = variance * (count / max(count - 1, 1)) if fused_kernel else variance
            assign("moving_mean", _moving_average(moving_mean, mean, momentum))
            assign("moving_variance", _moving_average(moving_variance, update, momentum))
        else:
            mean, variance = moving_mean, moving_variance
    # TF1's tf.nn.batch_normalization: x * inv + (beta - mean * inv).
    inv = jax.lax.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    offset = -mean * inv if beta is None else beta - mean * inv
    inv = inv.reshape(broadcast).astype(wide.dtype)
    offset = offset.reshape(broadcast).astype(wide.dtype)
    return (wide * inv + offset).astype(x.dtype)
