"""Additive (Bahdanau) and multiplicative (Luong) attention, with masks.

Both follow TF1's ``tf.contrib.seq2seq`` mechanisms. The memory is projected
once, outside the decoder loop, by a bias-free ``dense`` that TF1 names
``memory_layer``; the projected memory (the *keys*) and the memory itself
(the *values*) are then attended to at every decoder step::

    keys = js.nn.dense(memory, num_units, use_bias=False, name="memory_layer")
    ...  # inside the js.scan body, once per step:
    context, weights = js.nn.bahdanau_attention(h, keys, memory, mask)

Masks are boolean, ``True`` where the memory holds a real (attendable)
entry; masked entries get weight 0.

Both are computed explicitly (scores, :func:`masked_softmax`, weighted sum)
rather than through ``jax.nn.dot_product_attention``, which
``js.nn.multi_head_attention`` uses: they return the attention weights
(for alignment plots and TF1's ``alignment_history``), which
``dot_product_attention`` does not give, and Bahdanau's score is additive,
not a dot product.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import errors, initializers
from jaxscope._src.nn.linear import dense
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable


def masked_softmax(logits: jax.Array, mask: jax.Array | None = None, axis: int = -1) -> jax.Array:
    """``softmax(logits)`` over ``axis``, with weight 0 where ``mask`` is False.

    A row with nothing unmasked gets uniform weights rather than NaNs. The
    softmax runs in float32 (or wider); the weights have the logits' dtype.

    >>> w = js.nn.masked_softmax(jnp.zeros(4), jnp.array([True, True, False, False]))
    >>> w.tolist()
    [0.5, 0.5, 0.0, 0.0]
    """
    # In at least float32 (as jax.nn.dot_product_attention and Flax's
    # force_fp32_for_softmax do), returned in the logits' dtype.
    dtype = logits.dtype
    logits = logits.astype(jnp.promote_types(dtype, jnp.float32))
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits, axis=axis)
    if mask is not None:
        any_valid = jnp.any(mask, axis=axis, keepdims=True)
        weights = jnp.where(mask | ~any_valid, weights, 0.0)
    return weights.astype(dtype)


def _attend(scores: jax.Array, values: jax.Array, mask: jax.Array | None):
    weights = masked_softmax(scores, mask)
    context = jnp.einsum("...s,...sd->...d", weights, values.astype(weights.dtype))
    return context, weights


def bahdanau_attention(
    query: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    mask: jax.Array | None = None,
    *,
    normalize: bool = False,
    name: str | None = None,
    reuse: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Additive attention (Bahdanau et al., 2015), as TF1's ``BahdanauAttention``.

    ``score[s] = sum(attention_v * tanh(keys[s] + query @ query_layer/kernel))``;
    with ``normalize`` (weight normalization, TF1's ``normalize=True``),
    ``attention_v`` is replaced by ``attention_g * v / |v|`` and
    ``attention_b`` is added inside the ``tanh``.

    Variables (TF1's names): ``<name>/query_layer/kernel`` ``[query_dim,
    num_units]``, ``<name>/attention_v`` ``[num_units]``, and with
    ``normalize`` ``<name>/attention_g`` (a scalar, ``sqrt(1/num_units)``)
    and ``<name>/attention_b`` ``[num_units]`` (zeros). ``num_units`` is
    ``keys.shape[-1]``.

    Args:
        query: ``[..., query_dim]``, e.g. the decoder's state.
        keys: the projected memory, ``[..., S, num_units]``.
        values: the memory, ``[..., S, value_dim]``.
        mask: ``[..., S]`` bool, ``True`` for real entries.
        normalize: weight-normalize the score vector.
        name: the scope; ``None`` gives a uniquified ``bahdanau_attention``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``(context [..., value_dim], weights [..., S])``.

    >>> def model(h, memory, mask):
    ...     keys = js.nn.dense(memory, 6, use_bias=False, name="memory_layer")
    ...     return js.nn.bahdanau_attention(h, keys, memory, mask)
    >>> h, memory = jnp.ones((2, 4)), jnp.ones((2, 5, 3))
    >>> mask = jnp.arange(5) < jnp.array([[3], [5]])
    >>> f = js.transform(model)
    >>> params = f.init(0, h, memory, mask)
    >>> sorted(js.flatten(params))
    ['bahdanau_attention/attention_v', 'bahdanau_attention/query_layer/kernel', 'memory_layer/kernel']
    >>> context, weights = f.apply(params, h, memory, mask)
    >>> context.shape, weights.shape, float(weights[0, 3:].sum())
    ((2, 3), (2, 5), 0.0)
    """
    units = keys.shape[-1]
    with layer_scope(name, "bahdanau_attention", reuse):
        processed = dense(query, units, use_bias=False, name="query_layer")
        v = get_variable("attention_v", [units])
        if normalize:
            g = get_variable(
                "attention_g", [], initializer=initializers.constant(math.sqrt(1.0 / units))
            )
            b = get_variable("attention_b", [units], initializer=initializers.zeros)
            v = g * v * jax.lax.rsqrt(jnp.sum(jnp.square(v)))
            processed = processed + b
    scores = jnp.sum(v * jnp.tanh(keys + processed[..., None, :]), axis=-1)
    return _attend(scores, values, mask)


def luong_attention(
    query: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    mask: jax.Array | None = None,
    *,
    scale: bool = False,
    name: str | None = None,
    reuse: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Multiplicative attention (Luong et al., 2015), as TF1's ``LuongAttention``.

    ``score[s] = query . keys[s]``, times ``attention_g`` with ``scale``.
    The query's size must equal the keys' ``num_units`` (as in TF1). The
    only variable is ``<name>/attention_g`` (a scalar, 1.0) with ``scale``;
    the memory projection is the caller's ``memory_layer``.

    Args:
        query: ``[..., num_units]``.
        keys: the projected memory, ``[..., S, num_units]``.
        values: the memory, ``[..., S, value_dim]``.
        mask: ``[..., S]`` bool, ``True`` for real entries.
        scale: learn a scalar multiplier of the scores.
        name: the scope; ``None`` gives a uniquified ``luong_attention``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``(context [..., value_dim], weights [..., S])``.

    >>> def model(h, memory):
    ...     keys = js.nn.dense(memory, 4, use_bias=False, name="memory_layer")
    ...     return js.nn.luong_attention(h, keys, memory, scale=True)
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((2, 4)), jnp.ones((2, 5, 3)))
    >>> float(params["luong_attention"]["attention_g"])
    1.0
    """
    if query.shape[-1] != keys.shape[-1]:
        raise errors.ArgumentError(
            function="luong_attention",
            problem=f"the query's size ({query.shape[-1]}) must equal the keys' num_units "
            f"({keys.shape[-1]})",
            fix="project the memory to the query's size (memory_layer), or use bahdanau_attention",
        )
    scores = jnp.einsum("...u,...su->...s", query, keys)
    with layer_scope(name, "luong_attention", reuse):
        if scale:
            scores = scores * get_variable("attention_g", [], initializer=initializers.ones)
    return _attend(scores, values, mask)
