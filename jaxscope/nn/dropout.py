"""``dropout``, drawing its keys from ``js.next_rng_key``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope import errors
from jaxscope.nn._scope import layer_scope
from jaxscope.rng import next_rng_key

__all__ = ["dropout"]


def dropout(
    x: jax.Array,
    rate: float,
    *,
    is_training: bool = False,
    noise_shape: Sequence[int] | None = None,
    rng: Any = None,
    name: str | None = None,
) -> jax.Array:
    """Zeroes each element with probability ``rate`` and scales the rest by
    ``1 / (1 - rate)`` (TF1's ``tf.layers.dropout``: ``rate`` is the drop
    probability, and it is the identity unless training).

    The key is ``rng`` when given, else ``js.next_rng_key()`` drawn in the
    layer's scope (a uniquified ``dropout``), so ``apply`` needs an ``rng``
    when training. Inside ``js.scan`` and ``js.layer_stack`` every
    iteration or layer draws a different mask.

    Args:
        x: the inputs.
        rate: the drop probability; ``0`` is the identity.
        is_training: ``False`` (the default, as in TF1) is the identity.
        noise_shape: the shape of the keep mask, broadcast against ``x``
            (e.g. ``[batch, 1, features]`` drops the same features at every
            time step).
        rng: an explicit key instead of ``js.next_rng_key()``.
        name: the scope the key is drawn in.

    >>> def model(x, is_training):
    ...     return js.nn.dropout(x, 0.5, is_training=is_training)
    >>> f = js.transform(model)
    >>> x = jnp.ones(1000)
    >>> bool((f.apply({}, x, False) == x).all())
    True
    >>> y = f.apply({}, x, True, rng=jax.random.key(0))
    >>> sorted(set(np.asarray(y).tolist()))
    [0.0, 2.0]
    """
    if not is_training or (isinstance(rate, (int, float)) and rate == 0):
        return x
    if isinstance(rate, (int, float)) and not 0 <= rate < 1:
        raise errors.ArgumentError(
            f"dropout rate must be in [0, 1), got {rate}. Fix: pass the probability "
            "of dropping a unit (TF1's rate, not keep_prob)."
        )
    if rng is None:
        with layer_scope(name, "dropout"):
            rng = next_rng_key()
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep_prob = 1.0 - rate
    keep = jax.random.bernoulli(rng, keep_prob, shape)
    return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros((), x.dtype))
