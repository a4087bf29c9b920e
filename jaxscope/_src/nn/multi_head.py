"""Multi-head (scaled dot-product) attention, with masks and a key/value cache."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

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


class KVCache(NamedTuple):
    """The keys and values an attention layer attends to when it decodes one
    position at a time, so that step ``t`` projects only position ``t``
    instead of the whole prefix again.

    A plain pytree, passed to :func:`multi_head_attention` as ``cache=`` and
    returned updated: carry it through the decoding loop (``js.while_loop``,
    ``js.scan``), through a ``js.layer_stack`` as a per-layer input and
    output (stacked caches have a leading layer axis), and reorder its rows
    between beams with ``jax.tree.map``. Its capacity is fixed (static
    shapes): size it for the longest decode, or :meth:`grow` it between
    segments of the decoding loop. The heads come before the
    positions (``[..., heads, capacity, size]``, unlike the ``[..., S, heads,
    size]`` of the heads computed without a cache), so that a step reads
    each head's keys as one block, without transposing the whole cache. A self-attention cache starts
    empty (:meth:`zeros`); a cross-attention cache holds the memory's keys
    and values, computed once (:func:`memory_cache`).

    Beam search reorders the beams (the rows) at every step, and copying
    every cache's rows then costs as much as attending to them. A cache made
    with ``KVCache.zeros(..., beams=True)`` instead leaves its keys and
    values where they were written and keeps, per beam and position, the
    beam whose row holds that position (``origin``): :meth:`take_rows`
    moves only these indices, and the attention reads each beam's history
    through them (each beam's queries against every beam's row of its
    example, then the right one picked: ``beam_size`` times the reading and
    arithmetic of the attention, none of the copying).

    Attributes:
        key: ``[..., num_heads, capacity, key_size]``.
        value: ``[..., num_heads, capacity, value_size]``.
        length: int32, the positions filled (the next is written there);
            shape ``[]``, or ``[num_layers]`` for stacked caches.
        origin: ``None``, or with ``beams=True`` int32 ``[..., beam_size,
            capacity]``: position ``s`` of beam ``b`` is in the row of beam
            ``origin[..., b, s]`` of the same example. The batch axes are
            then ``[..., beam_size]``; a query's batch axes may be those or
            their product (beam-major rows, as ``jnp.repeat`` gives).

    >>> cache = js.nn.KVCache.zeros([2], 10, num_heads=4, key_size=8)
    >>> cache.key.shape, int(cache.length)
    ((2, 4, 10, 8), 0)
    """

    key: jax.Array
    value: jax.Array
    length: jax.Array
    origin: jax.Array | None = None

    @classmethod
    def zeros(
        cls,
        batch_shape: Sequence[int],
        capacity: int,
        *,
        num_heads: int,
        key_size: int,
        value_size: int | None = None,
        dtype: Any = jnp.float32,
        beams: bool = False,
    ) -> KVCache:
        """An empty cache for ``capacity`` positions of rows ``batch_shape``.

        ``num_heads``, ``key_size``, ``value_size`` and ``dtype`` are those
        of the attention layer's projections (``key_size`` defaults there to
        ``query_dim // num_heads``, ``value_size`` to ``key_size``). With
        ``beams=True`` the last batch axis is the beams of beam search
        (``[batch, beam_size]``), reordered through ``origin``.

        >>> cache = js.nn.KVCache.zeros([2, 3], 10, num_heads=4, key_size=8, beams=True)
        >>> cache.key.shape, cache.origin.shape
        ((2, 3, 4, 10, 8), (2, 3, 10))
        """
        value_size = value_size or key_size
        batch_shape = tuple(batch_shape)
        origin = None
        if beams:
            beam = jnp.arange(batch_shape[-1], dtype=jnp.int32)[:, None]
            origin = jnp.broadcast_to(beam, (*batch_shape, capacity))
        return cls(
            jnp.zeros((*batch_shape, num_heads, capacity, key_size), dtype),
            jnp.zeros((*batch_shape, num_heads, capacity, value_size), dtype),
            jnp.zeros((), jnp.int32),
            origin,
        )

    def grow(self, capacity: int) -> KVCache:
        """This cache with room for ``capacity`` positions, at least its own:
        the filled positions kept, the added ones empty.

        Attention through a cache costs what attending to its whole capacity
        costs, filled or not. A long decode can instead start with a small
        cache and grow it in steps, running its loop in segments (one
        ``js.while_loop`` per capacity): each step then attends to little
        more than the positions filled so far, at the price of compiling
        the loop's body once per segment (``examples/seq2seq`` grows its
        caches by a quarter at a time, in multiples of 16 positions).

        >>> cache = js.nn.KVCache.zeros([2], 4, num_heads=1, key_size=2)
        >>> grown = cache.grow(8)
        >>> grown.key.shape, int(grown.length)
        ((2, 1, 8, 2), 0)
        """
        added = capacity - self.key.shape[-2]
        if added == 0:
            return self
        if added < 0:
            raise errors.ArgumentError(
                function="KVCache.grow",
                argument="capacity",
                problem=f"{capacity} is less than the cache's capacity {self.key.shape[-2]}",
                fix="grow a cache only to a larger capacity (or make a new one with "
                "js.nn.KVCache.zeros)",
            )

        def pad(x: jax.Array) -> jax.Array:
            return jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, added), (0, 0)])

        origin = self.origin
        if origin is not None:  # an empty position is in its beam's own row
            beam = jnp.arange(origin.shape[-2], dtype=origin.dtype)[:, None]
            empty = jnp.broadcast_to(beam, (*origin.shape[:-1], added))
            origin = jnp.concatenate([origin, empty], axis=-1)
        return self._replace(key=pad(self.key), value=pad(self.value), origin=origin)

    def take_rows(self, rows: jax.Array) -> KVCache:
        """The cache of the rows ``rows`` (indices into the batch axes,
        flattened): beam search's reordering of the beams. A cache with
        ``origin`` moves only its origin indices, and each row must then
        come from a beam of the same example; otherwise the keys and values
        are gathered.

        >>> cache = js.nn.KVCache.zeros([1, 2], 4, num_heads=1, key_size=2, beams=True)
        >>> cache.take_rows(jnp.array([1, 1])).origin[0, :, 0].tolist()
        [1, 1]
        """
        if self.origin is None:
            key, value = (
                x.reshape(-1, *x.shape[-3:])[rows].reshape(x.shape) for x in (self.key, self.value)
            )
            return self._replace(key=key, value=value)
        origin = self.origin.reshape(-1, self.origin.shape[-1])[rows]
        return self._replace(origin=origin.reshape(self.origin.shape))


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
    cache: KVCache | None = None,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array | tuple[jax.Array, ...]:
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

    Decoding one position at a time, pass a :class:`KVCache`:

    - ``cache=`` an (initially empty) cache and ``memory=query``: the keys
      and values of the new positions ``query`` holds (usually one) are
      written into the cache at ``cache.length``, and each new position
      attends to the cached positions up to itself, causally. The output
      is what causal self-attention over the whole prefix gives at those
      positions, and the updated cache is returned with it.
    - ``cache=`` :func:`memory_cache`'s keys and values of a memory, and
      ``memory=None``: the query attends to them as they are (the memory is
      not projected again at every step); the cache is returned unchanged.
    - ``cache=`` a beam search cache (``KVCache.zeros(..., beams=True)``):
      as the first case, each beam reading its history through the cache's
      ``origin``; the query's rows are the cache's batch axes, or their
      product (``[batch * beam_size, T, query_dim]``, beam-major).

    A ``mask`` given with a cache masks the cache's positions: it is
    broadcast to ``[..., num_heads, T, capacity]``, ``...`` the cache's
    batch axes (a padding mask of the memory as ``mask[:, None, None, :]``). With a cache the heads run the
    explicit way (scores, softmax, weighted sum) over the heads-major cache.
    The cache is an explicit pytree rather than ``trainable=False``
    variables: its size is the decode's (batch, beams, length), not the
    model's, it has no place in a checkpoint, and the inference function
    stays free of state.

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
        cache: a :class:`KVCache` to decode with (see above).
        name: the scope; ``None`` gives a uniquified ``multihead_attention``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``[..., T, output_size]``; with ``return_weights`` also the weights;
        with ``cache`` also the updated cache, last: ``(out, cache)`` or
        ``(out, weights, cache)``.

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

    The same outputs one position at a time, through a cache:

    >>> def step(cache, x_t):  # x_t: [3, 1, 8], one position
    ...     out, cache = js.nn.multi_head_attention(x_t, x_t, num_heads=2, cache=cache)
    ...     return cache, out[:, 0]
    >>> def decode(x):
    ...     cache = js.nn.KVCache.zeros([3], 5, num_heads=2, key_size=4)
    ...     return js.scan(step, cache, jnp.swapaxes(x, 0, 1)[:, :, None])[1]
    >>> steps = js.transform(decode).apply(params, x)
    >>> bool(jnp.allclose(jnp.swapaxes(steps, 0, 1), f.apply(params, x), atol=1e-6))
    True
    """
    query_dim = query.shape[-1]
    key_size = key_size or query_dim // num_heads
    value_size = value_size or key_size
    _check_sizes_and_memory(query_dim, num_heads, key_size, memory, cache)
    drop = functools.partial(dropout, rate=dropout_rate, is_training=is_training)
    with layer_scope(name, "multihead_attention", reuse):
        q = dense(query, num_heads * key_size, use_bias=use_bias, name="query")
        q = q.reshape(*q.shape[:-1], num_heads, key_size)
        sizes = (num_heads, key_size, value_size, use_bias)
        if cache is None:
            k, v = _keys_and_values(memory, *sizes, heads_first=False)
            layout = "shd"
        else:
            new = None if memory is None else _keys_and_values(memory, *sizes, heads_first=True)
            k, v, mask, cache = _attend_to_cache(cache, new, mask)
            layout = "hsd"
        dropout_active = is_training and not (
            isinstance(dropout_rate, (int, float)) and dropout_rate == 0
        )
        fused = cache is None and not return_weights and not dropout_active
        if fused and _fits_fused(q, k, v, mask):
            out, weights = _fused_attention(q, k, v, mask), None
        elif cache is not None and cache.origin is not None:
            out, weights = _beam_attention(q, cache, mask, drop)
        else:
            scores = jnp.einsum(f"...thd,...{layout}->...hts", q, k) / math.sqrt(key_size)
            if mask is not None:
                mask = jnp.broadcast_to(mask, scores.shape)
            weights = masked_softmax(scores, mask)
            out = jnp.einsum(f"...hts,...{layout}->...thd", drop(weights), v)
        out = out.reshape(*out.shape[:-2], num_heads * value_size)
        out = dense(out, output_size or query_dim, use_bias=use_bias, name="output")
    outputs = (out, weights) if return_weights else (out,)
    if cache is not None:
        outputs = (*outputs, cache)
    return outputs if len(outputs) > 1 else out


def _check_sizes_and_memory(
    query_dim: int, num_heads: int, key_size: int, memory: Any, cache: Any
) -> None:
    if key_size < 1:
        raise errors.ArgumentError(
            function="multi_head_attention",
            problem=f"query_dim {query_dim} < num_heads {num_heads}, so the default "
            "key_size (query_dim // num_heads) is 0",
            fix="give key_size explicitly",
        )
    if memory is None and cache is None:
        raise errors.ArgumentError(
            function="multi_head_attention",
            problem="memory=None attends to a cache's keys and values, but no cache was given",
            fix="pass memory (memory=query for self-attention), or "
            "cache=js.nn.memory_cache(memory, ...)",
        )


def memory_cache(
    memory: jax.Array,
    *,
    num_heads: int,
    key_size: int | None = None,
    value_size: int | None = None,
    use_bias: bool = True,
    name: str = "multihead_attention",
    reuse: Any = None,
) -> KVCache:
    """The keys and values of ``memory`` for the attention layer ``name``,
    computed once: what a decoder's cross-attention attends to at every step
    (``multi_head_attention(query, None, mask, cache=...)``).

    It runs the layer's ``key`` and ``value`` projections, the variables
    ``<name>/key`` and ``<name>/value`` of :func:`multi_head_attention`; call
    it in the scope the attention layer is called in, with the same sizes.

    Args:
        memory: ``[..., S, memory_dim]``.
        num_heads: the attention layer's number of heads.
        key_size: its per-head key size; default ``memory_dim // num_heads``
            (the layer's default when query and memory have one width).
        value_size: default ``key_size``.
        use_bias: whether the projections have biases.
        name: the attention layer's scope (its default name, as given).
        reuse: ``True`` / ``js.AUTO_REUSE`` to share the layer's variables.

    Returns:
        A full :class:`KVCache` (``length == S``).

    >>> def model(query, memory):
    ...     full = js.nn.multi_head_attention(query, memory, num_heads=2)
    ...     cache = js.nn.memory_cache(memory, num_heads=2, reuse=True)
    ...     cached, _ = js.nn.multi_head_attention(
    ...         query, None, num_heads=2, cache=cache, reuse=True
    ...     )
    ...     return jnp.max(jnp.abs(full - cached))
    >>> f = js.transform(model)
    >>> q, m = jnp.ones((2, 3, 8)), jnp.arange(80.0).reshape(2, 5, 8) / 80
    >>> float(f.apply(f.init(0, q, m), q, m)) < 1e-6
    True
    """
    key_size = key_size or memory.shape[-1] // num_heads
    value_size = value_size or key_size
    with layer_scope(name, "multihead_attention", reuse):
        sizes = (num_heads, key_size, value_size, use_bias)
        k, v = _keys_and_values(memory, *sizes, heads_first=True)
    return KVCache(k, v, jnp.asarray(memory.shape[-2], jnp.int32))


def _keys_and_values(
    memory: jax.Array,
    num_heads: int,
    key_size: int,
    value_size: int,
    use_bias: bool,
    heads_first: bool,
) -> tuple[jax.Array, jax.Array]:
    """The ``key`` and ``value`` projections of ``memory``, split into heads:
    ``[..., S, num_heads, size]``, or ``[..., num_heads, S, size]`` with
    ``heads_first`` (a cache's layout)."""
    k = dense(memory, num_heads * key_size, use_bias=use_bias, name="key")
    v = dense(memory, num_heads * value_size, use_bias=use_bias, name="value")
    k = k.reshape(*k.shape[:-1], num_heads, key_size)
    v = v.reshape(*v.shape[:-1], num_heads, value_size)
    if heads_first:
        k, v = jnp.swapaxes(k, -2, -3), jnp.swapaxes(v, -2, -3)
    return k, v


def _attend_to_cache(
    cache: KVCache, new: tuple[jax.Array, jax.Array] | None, mask: jax.Array | None
) -> tuple[jax.Array, jax.Array, jax.Array, KVCache]:
    """The keys, values and mask to attend to through ``cache``, and the
    cache to return: with ``new`` keys and values (``[..., T, H, d]``)
    written at ``cache.length``, each new position sees the positions up to
    itself; without, every filled position is seen. Keys and values are
    heads-major: ``[..., H, positions, d]``."""
    if not isinstance(cache, KVCache):
        raise errors.ArgumentTypeError(
            function="multi_head_attention",
            argument="cache",
            problem=f"must be a js.nn.KVCache, got {type(cache).__name__}",
            fix="js.nn.KVCache.zeros(...) for self-attention, js.nn.memory_cache(memory, ...) "
            "for cross-attention",
        )
    capacity = cache.key.shape[-2]
    positions = jnp.arange(capacity)
    if new is None:
        visible = positions < cache.length
    else:
        k, v = new
        steps = k.shape[-2]
        try:
            end = int(cache.length) + steps
        except (jax.errors.ConcretizationTypeError, TypeError):
            end = None  # traced: dynamic_update_slice would clamp a write past the end
        if end is not None and end > capacity:
            raise errors.ArgumentError(
                function="multi_head_attention",
                argument="cache",
                problem=f"holds {capacity} positions, {int(cache.length)} filled, too few "
                f"for {steps} more",
                fix="a larger capacity in js.nn.KVCache.zeros (the longest decode's length)",
            )
        # The new rows in the cache's batch axes ([..., beams] with beams).
        k, v = (x.reshape(*cache.key.shape[:-3], *x.shape[-3:]) for x in (k, v))
        start = (0,) * (k.ndim - 2) + (cache.length, 0)
        origin = cache.origin
        if origin is not None:  # each beam writes its new positions in its own row
            beam = jnp.arange(origin.shape[-2], dtype=origin.dtype)[:, None]
            written = jnp.broadcast_to(beam, (*origin.shape[:-1], steps))
            origin = jax.lax.dynamic_update_slice(origin, written, start[:-3] + start[-2:-1])
        cache = KVCache(
            jax.lax.dynamic_update_slice(cache.key, k.astype(cache.key.dtype), start),
            jax.lax.dynamic_update_slice(cache.value, v.astype(cache.value.dtype), start),
            cache.length + steps,
            origin,
        )
        query_positions = cache.length - steps + jnp.arange(steps)
        visible = positions <= query_positions[:, None]  # [T, capacity]
    mask = visible if mask is None else visible & jnp.asarray(mask, bool)
    return cache.key, cache.value, mask, cache


def _beam_attention(
    q: jax.Array, cache: KVCache, mask: jax.Array | None, drop: Any
) -> tuple[jax.Array, jax.Array]:
    """The heads ``q`` ``[..., T, H, d]`` attending to a cache with beam
    origins: each beam's queries against every beam's row of its example
    (batched products over the cache as it lies: no copy of it), then, per
    position, the score of the beam that holds it. Returns the heads
    ``[..., T, H, value_size]`` and the weights ``[..., H, T, capacity]``,
    in ``q``'s batch axes."""
    beams, capacity = cache.origin.shape[-2:]
    steps, heads, key_size = q.shape[-3:]
    value_size = cache.value.shape[-1]
    n = math.prod(cache.key.shape[:-4])  # the examples
    keys = cache.key.reshape(n, beams, heads, capacity, key_size)
    values = cache.value.reshape(n, beams, heads, capacity, value_size)
    origin = cache.origin.reshape(n, beams, capacity)
    queries = q.reshape(n, beams, steps, heads, key_size).transpose(0, 1, 3, 2, 4)
    scores = _beam_scores(queries, keys, origin) / math.sqrt(key_size)  # [n, H, b, T, S]
    scores = scores.reshape(n, heads, beams * steps, capacity)
    if mask is not None:
        mask = jnp.broadcast_to(mask, (*cache.key.shape[:-3], heads, steps, capacity))
        mask = mask.reshape(n, beams, heads, steps, capacity).transpose(0, 2, 1, 3, 4)
        mask = mask.reshape(scores.shape)
    weights = masked_softmax(scores, mask)
    dropped = drop(weights).reshape(n, heads, beams, steps, capacity)
    out = _beam_values(dropped, values, origin)  # [n, b, H, T, value_size]
    out = out.transpose(0, 1, 3, 2, 4)
    weights = weights.reshape(n, heads, beams, steps, capacity).transpose(0, 2, 1, 3, 4)
    batch = q.shape[:-3]
    return out.reshape(*batch, *out.shape[-3:]), weights.reshape(*batch, *weights.shape[-3:])


def _held(origin: jax.Array, beam: int) -> jax.Array:
    """``[n, c, 1, 1, S]``: whether beam ``c``'s row holds position ``s`` of
    beam ``beam``, given the origins ``[n, beams, S]``."""
    rows = jnp.arange(origin.shape[1]).reshape(1, -1, 1, 1, 1)
    return origin[:, beam, None, None, None, :] == rows


# One product per beam (its queries against every row of its example) rather
# than one of all beams' queries at once: XLA runs these faster on CPU.
def _beam_scores(queries: jax.Array, keys: jax.Array, origin: jax.Array) -> jax.Array:
    """The scores ``[n, H, b, T, S]`` of queries ``[n, b, H, T, d]`` against
    keys ``[n, c, H, S, d]``, position ``s`` of beam ``b`` read in the row
    ``origin[n, b, s]``."""
    scores = []
    for beam in range(queries.shape[1]):
        query = jnp.broadcast_to(queries[:, beam, None], (*keys.shape[:3], *queries.shape[-2:]))
        every_row = jnp.einsum("nchtd,nchsd->nchts", query, keys)
        scores.append(jnp.sum(jnp.where(_held(origin, beam), every_row, 0.0), axis=1))
    return jnp.stack(scores, axis=2)


def _beam_values(weights: jax.Array, values: jax.Array, origin: jax.Array) -> jax.Array:
    """The weighted sums ``[n, b, H, T, d]`` of values ``[n, c, H, S, d]``
    under weights ``[n, H, b, T, S]``, position ``s`` of beam ``b`` read in
    the row ``origin[n, b, s]``."""
    out = []
    for beam in range(weights.shape[2]):
        spread = jnp.where(_held(origin, beam), weights[:, None, :, beam], 0.0)
        out.append(jnp.einsum("nchts,nchsd->nchtd", spread, values).sum(axis=1))
    return jnp.stack(out, axis=1)


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
