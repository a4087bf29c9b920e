"""Dropout, in TF1's two flavours, drawing keys from ``js.next_rng_key``.

TF1 had two dropouts with opposite defaults, and a one-to-one port must not
mix them up:

- ``tf.layers.dropout(x, rate, training=False)`` drops only when told it is
  training. Its port is :func:`dropout`, whose ``is_training`` has no
  default, so every call says which mode it is in.
- ``tf.nn.dropout(x, keep_prob)`` always drops (TF1 models evaluate by
  feeding ``keep_prob=1.0``, or, like BERT, by not calling it). Its port is
  :func:`tf1_dropout`,
  with TF1's argument order: the second positional argument is
  ``keep_prob``, not ``rate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import errors
from jaxscope._src.nn.args import static_flag
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.rng import next_rng_key


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _drop(
    x: jax.Array, keep_prob: Any, noise_shape: Sequence[int] | None, rng: Any, name: str | None
) -> jax.Array:
    if rng is None:
        with layer_scope(name, "dropout"):
            rng = next_rng_key()
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    # The mask is drawn in float32 whatever x's dtype: bfloat16 uniforms are too coarse.
    keep = jax.random.bernoulli(rng, jnp.asarray(keep_prob, jnp.float32), shape)
    return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros((), x.dtype))


def dropout(
    x: jax.Array,
    rate: float,
    *,
    is_training: bool,
    noise_shape: Sequence[int] | None = None,
    rng: Any = None,
    name: str | None = None,
) -> jax.Array:
    """TF1's ``tf.layers.dropout``: in training, zeroes each element with
    probability ``rate`` and scales the rest by ``1 / (1 - rate)``; otherwise
    the identity.

    ``is_training`` is required (TF1 defaulted to ``training=False``, which
    silently turned dropout off in ports of ``tf.nn.dropout``); for TF1's
    ``tf.nn.dropout(x, keep_prob)``, which always drops, use
    :func:`tf1_dropout`.

    The key is ``rng`` when given, else ``js.next_rng_key()`` drawn in the
    layer's scope (a uniquified ``dropout``), so ``apply`` needs an ``rng``
    when training. Inside ``js.scan`` and ``js.layer_stack`` every
    iteration or layer draws a different mask.

    Args:
        x: the inputs.
        rate: the drop probability; ``0`` is the identity.
        is_training: a Python bool; ``False`` is the identity.
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
    if not static_flag(is_training, "js.nn.dropout") or (_is_number(rate) and rate == 0):
        return x
    if _is_number(rate) and not 0 <= rate < 1:
        raise errors.ArgumentError(
            function="js.nn.dropout",
            argument="rate",
            problem=f"must be in [0, 1), got {rate}",
            fix="pass a rate of at least 0 and below 1 (the fraction of values dropped)",
        )
    return _drop(x, 1.0 - rate, noise_shape, rng, name)


def tf1_dropout(
    x: jax.Array,
    keep_prob: Any = None,
    noise_shape: Sequence[int] | None = None,
    *,
    rate: Any = None,
    rng: Any = None,
    name: str | None = None,
) -> jax.Array:
    """TF1's ``tf.nn.dropout(x, keep_prob)``: always drops.

    Each element is kept with probability ``keep_prob`` (or ``1 - rate``)
    and scaled by ``1 / keep_prob``; the rest are zeroed. There is no
    training flag, as in TF1: a model evaluates with ``keep_prob=1.0``,
    which is the identity. ``keep_prob`` (or ``rate``) may be an array,
    like TF1's ``keep_prob`` placeholder fed 0.9 in training and 1.0 in
    evaluation; then ``apply`` needs an ``rng`` in both.

    Args:
        x: the inputs.
        keep_prob: the probability of keeping an element, in ``(0, 1]``
            (TF1's second positional argument).
        noise_shape: the shape of the keep mask, broadcast against ``x``.
        rate: the drop probability, ``1 - keep_prob`` (TF1's later
            keyword); give exactly one of ``keep_prob`` and ``rate``.
        rng: an explicit key instead of ``js.next_rng_key()``.
        name: the scope the key is drawn in (a uniquified ``dropout``).

    >>> f = js.transform(lambda x: js.nn.tf1_dropout(x, 0.8))  # keep 80%
    >>> y = f.apply({}, jnp.ones(10_000), rng=jax.random.key(0))
    >>> round(float((y == 0).mean()), 1), float(y.max())
    (0.2, 1.25)
    """
    if (keep_prob is None) == (rate is None):
        raise errors.ArgumentError(
            function="js.nn.tf1_dropout",
            problem=f"got keep_prob={keep_prob!r} and rate={rate!r}",
            fix="give exactly one of keep_prob (TF1's second positional argument) and rate=",
        )
    if keep_prob is None:
        if _is_number(rate) and not 0 <= rate < 1:
            raise errors.ArgumentError(
                function="js.nn.tf1_dropout",
                argument="rate",
                problem=f"must be in [0, 1), got {rate}",
                fix="pass a rate of at least 0 and below 1 (the fraction of values dropped)",
            )
        keep_prob = 1.0 - rate if _is_number(rate) else 1.0 - jnp.asarray(rate)
    elif _is_number(keep_prob) and not 0 < keep_prob <= 1:
        raise errors.ArgumentError(
            function="js.nn.tf1_dropout",
            argument="keep_prob",
            problem=f"must be in (0, 1], got {keep_prob}",
            fix="pass a keep_prob above 0 and at most 1 (the fraction of values kept)",
        )
    if _is_number(keep_prob) and keep_prob == 1:
        return x
    return _drop(x, keep_prob, noise_shape, rng, name)
