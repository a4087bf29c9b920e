"""``layer_norm``: TF1's ``tf.contrib.layers.layer_norm`` as a function."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import initializers
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable


def layer_norm(
    x: jax.Array,
    *,
    center: bool = True,
    scale: bool = True,
    epsilon: float = 1e-12,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """Layer normalization over the last axis.

    ``(x - mean) / sqrt(var + epsilon) * gamma + beta``. Variables (TF1's
    names): ``<name>/beta`` (zeros, when ``center``) and ``<name>/gamma``
    (ones, when ``scale``), of shape ``[x.shape[-1]]``. The default scope is
    TF1's ``LayerNorm`` (as in BERT checkpoints), and ``epsilon`` is TF1's
    ``1e-12``, which its contrib layer hard-coded (BERT uses it with
    ``begin_norm_axis=-1``, this function's only axis). Flax and Haiku use
    ``1e-6`` and ``1e-5``: pass those to match a model from them.

    The statistics are computed in float32 (or wider) whatever ``x``'s
    dtype; the result has the params' dtype (``x``'s without params), so
    under a bfloat16 ``js.precision.Policy`` it is bfloat16.

    Args:
        x: ``[..., features]``.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        epsilon: added to the variance (TF1's ``1e-12``).
        name: the variable scope; ``None`` gives a uniquified ``LayerNorm``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier layer's.

    >>> def model(x):
    ...     return js.nn.layer_norm(x)
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((2, 3)))
    >>> sorted(params["LayerNorm"])
    ['beta', 'gamma']
    >>> y = f.apply(params, jnp.array([[1.0, 2.0, 3.0]]))
    >>> [round(v, 3) for v in y[0].tolist()]
    [-1.225, 0.0, 1.225]
    """
    with layer_scope(name, "LayerNorm", reuse):
        features = [x.shape[-1]]
        beta = get_variable("beta", features, initializer=initializers.zeros) if center else None
        gamma = get_variable("gamma", features, initializer=initializers.ones) if scale else None
    # Statistics, scale and shift in at least float32 (as Flax's LayerNorm):
    # bfloat16's 8 bits of mantissa lose small variances; the result is cast
    # to the params' dtype, the compute dtype a precision policy hands out.
    params = [p for p in (gamma, beta) if p is not None]
    if params:
        dtype = jnp.result_type(*params)
    else:
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + epsilon)
    if gamma is not None:
        y = y * gamma.astype(y.dtype)
    if beta is not None:
        y = y + beta.astype(y.dtype)
    return y.astype(dtype)
