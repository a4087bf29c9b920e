"""Multi-head (scaled dot-product) attention, with masks."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import errors
from jaxscope._src.nn.attention import masked_softmax
from jaxscope._src.nn.dropout import dropout
from jaxscope._src.nn.linear import dense
from jaxscope._src.nn.scope import layer_scope


def causal_mask(length: int) -> jax.Array:
    """``[length, length]`` bool, ``True`` where query ``t`` may attend to
    key ``s`` (``s <= t``).

    >>> js.nn.causal_mask(3).astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    return jnp.tril(jnp.ones((length, length), bool))


def multi_head_attention(
    query: jax.Array,
    memory: jax.Array,
    mask: jax.Array | None = None,
    *,
    num_heads: int,
    key_size: int | None = None,
    value_size: int | None = None,
    output_size: int | None = None,
    use_bias: bool = True,
    dropout_rate: float = 0.0,
    is_training: bool = False,
    return_weights: bool = False,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Multi-head attention (Vaswani et al., 2017) of ``query`` over ``memory``.

    Each head computes ``softmax(q k^T / sqrt(key_size)) v``; the heads are
    concatenated and projected. Self-attention is ``memory=query``.

    The heads run through ``jax.nn.dot_product_attention`` whenever it
    gives this function's results: no weights asked for, no dropout active,
    ``value_size == key_size``, the three projections of one dtype, and
    ``query`` and ``memory`` with the same leading (batch) axes. JAX picks
    its implementation (XLA today, with the softmax in float32; a fused GPU
    kernel where JAX selects one). The other cases go the explicit way
    (scores, :func:`masked_softmax`, weighted sum), because
    ``dot_product_attention`` returns no weights (``return_weights``), has
    no dropout on them (``dropout_rate`` while training), and needs keys and
    values of one head size, one dtype and one batch. Either way, a query
    whose keys are all masked out gets uniform weights over every key, not
    NaNs.

    Variables: four :func:`dense` layers in ``<name>``: ``query``, ``key``,
    ``value`` (``[dim, num_heads * size]``) and ``output``, each with
    ``kernel`` and (with ``use_bias``) ``bias``, the layout of BERT's TF1
    checkpoints (``attention/self/query/kernel``, …).

    Args:
        query: ``[..., T, query_dim]``.
        memory: ``[..., S, memory_dim]``.
        mask: bool, broadcastable to ``[..., num_heads, T, S]``; ``True``
            where query ``t`` may attend to key ``s``. A padding mask
            ``[B, S]`` is passed as ``mask[:, None, None, :]``; a causal
            mask is ``js.nn.causal_mask(T)``.
        num_heads: the number of heads.
        key_size: per-head size of queries and keys; default
            ``query_dim // num_heads``.
        value_size: per-head size of values; default ``key_size``.
        output_size: default ``query_dim``.
        use_bias: whether the projections have biases.
        dropout_rate: dropout on the attention weights when training.
        is_training: enables dropout.
        return_weights: also return the weights ``[..., num_heads, T, S]``.
        name: the scope; ``None`` gives a uniquified ``multihead_attention``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``[..., T, output_size]``, and the weights with ``return_weights``.

    >>> def model(x):
    ...     causal = js.nn.causal_mask(x.shape[-2])
    ...     return js.nn.multi_head_attention(x, x, causal, num_heads=2)
    >>> f = js.transform(model)
    >>> x = jnp.ones((3, 5, 8))
    >>> params = f.init(0, x)
    >>> sorted(params["multihead_attention"])
    ['key', 'output', 'query', 'value']
    >>> f.apply(params, x).shape
    (3, 5, 8)
    """
    query_dim = query.shape[-1]
    key_size = key_size or query_dim // num_heads
    value_size = value_size or key_size
    output_size = output_size or query_dim
    if key_size < 1:
        raise errors.ArgumentError(
            f"multi_head_attention: query_dim {query_dim} < num_heads {num_heads}; "
            "give key_size explicitly."
        )

    def heads(x: jax.Array, size: int) -> jax.Array:  # [..., L, H*size] -> [..., L, H, size]
        return x.reshape(*x.shape[:-1], num_heads, size)

    with layer_scope(name, "multihead_attention", reuse):
        q = heads(dense(query, num_heads * key_size, use_bias=use_bias, name="query"), key_size)
        k = heads(dense(memory, num_heads * key_size, use_bias=use_bias, name="key"), key_size)
        v = heads(
            dense(memory, num_heads * value_size, use_bias=use_bias, name="value"), value_size
        )
        dropout_active = is_training and not (
            isinstance(dropout_rate, (int, float)) and dropout_rate == 0
        )
        if not return_weights and not dropout_active and _fits_fused(q, k, v, mask):
            out = _fused_attention(q, k, v, mask)
        else:
            scores = jnp.einsum("...thd,...shd->...hts", q, k) / math.sqrt(key_size)
            if mask is not None:
                mask = jnp.broadcast_to(mask, scores.shape)
            weights = masked_softmax(scores, mask)
            dropped = dropout(weights, dropout_rate, is_training=is_training)
            out = jnp.einsum("...hts,...shd->...thd", dropped, v)
        out = out.reshape(*out.shape[:-2], num_heads * value_size)
        out = dense(out, output_size, use_bias=use_bias, name="output")
    return (out, weights) if return_weights else out


def _fits_fused(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None) -> bool:
    """Whether ``jax.nn.dot_product_attention`` takes these heads as they
    are: keys and values alike, one dtype, one batch, a mask of at most the
    scores' rank."""
    return (
        k.shape == v.shape
        and q.dtype == k.dtype == v.dtype
        and q.shape[:-3] == k.shape[:-3]
        and (mask is None or jnp.ndim(mask) <= q.ndim)
    )


def _fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None):
    """``[..., T, H, d]`` heads through ``jax.nn.dot_product_attention``,
    which takes one batch axis (or none): further leading axes are merged
    into one, the mask's with them."""
    lead = q.shape[:-3]
    if mask is not None:
        mask = jnp.asarray(mask).astype(bool)
    if len(lead) > 1:
        batch = math.prod(lead)
        if mask is not None and mask.ndim > 3:
            mask = jnp.broadcast_to(mask, (*lead, *mask.shape[-3:])).reshape(
                batch, *mask.shape[-3:]
            )
        q, k, v = (x.reshape(batch, *x.shape[-3:]) for x in (q, k, v))
    out = jax.nn.dot_product_attention(q, k, v, mask=mask)
    return out.reshape(*lead, *out.shape[-3:])
