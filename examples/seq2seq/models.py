"""Sequence-to-sequence models written with variable scopes, TF1 style.

Model A (``model="rnn"``): a bidirectional LSTM encoder and an LSTM decoder
with Bahdanau attention and input feeding, both run over time with
``js.scan``. Model B (``model="transformer"``): a small pre-LayerNorm
Transformer whose encoder and decoder layers are ``js.layer_stack`` s.

Each model is four functions sharing one set of variables by name:

- ``train`` (teacher forcing) creates everything, under the scopes
  ``encoder`` and ``decoder``;
- ``greedy``, ``beam`` (beam search with GNMT's length penalty and n-best
  lists) and ``sample`` (temperature and top-k) are separate inference
  functions that enter ``js.variable_scope("encoder", reuse=True)`` and
  ``js.variable_scope("decoder", reuse=True)`` and decode with
  ``js.while_loop``, stopping once every sequence (every beam) has emitted
  EOS. They create nothing: their ``init`` fails with
  ``VariableMissingError``, and their ``apply`` runs on the params
  ``train.init`` made (or training produced), exactly as a TF1 inference
  graph built under ``reuse=True``.

The decoders run the decoder on one position per output step: model A
carries its LSTM state, model B a key/value cache per layer
(``js.nn.KVCache``) and the encoder memory's keys and values, projected
once. ``build(cfg, cached=False)`` gives decoders that instead run the
teacher-forcing decoder over the whole prefix at every step: the same
tokens, in time quadratic in the length (a reference for tests and
benchmarks).

>>> import jax.numpy as jnp
>>> from examples.seq2seq import models
>>> m = models.build(models.ModelConfig(embed_dim=8, hidden=8, max_tgt_len=5))
>>> src = jnp.array([[5, 6, 7, 2]]); mask = src > 0; tgt_in = jnp.array([[1, 7, 6]])
>>> params = m.train.init(0, src, mask, tgt_in)
>>> sorted(params)
['decoder', 'encoder']
>>> logits, attention = m.train.apply(params, src, mask, tgt_in)
>>> logits.shape, attention.shape
((1, 3, 64), (1, 3, 4))
>>> m.greedy.apply(params, src, mask).shape
(1, 5)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import jaxscope as js
from jaxscope import nn

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

_NEG_INF = -1e9  # a log-probability that never wins, without inf arithmetic
_SEGMENT = 16  # positions: the unit in which decoding grows its key/value caches


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of both models.

    Model A uses ``embed_dim`` for both embeddings, ``hidden // 2`` units
    per encoder direction and ``hidden`` for the decoder LSTM, the attention
    and the attention vector (``hidden`` must be even). Model B uses
    ``embed_dim`` as the model width (divisible by ``num_heads``), ``hidden``
    as the feed-forward width and ``num_layers`` layers in each stack.

    ``dtype="bfloat16"`` runs both in mixed precision: the params stay
    float32 (what the optimizer updates and checkpoints hold), the model
    computes in bfloat16 (a ``js.precision.Policy`` getter hands it cast
    copies), and the logits come back in float32 for the loss.
    """

    model: str = "rnn"  # "rnn" = model A, "transformer" = model B
    src_vocab: int = 64
    tgt_vocab: int = 64
    embed_dim: int = 64
    hidden: int = 128
    num_layers: int = 2  # transformer layers (encoder and decoder each)
    num_heads: int = 4
    dropout: float = 0.0
    max_tgt_len: int = 12  # decode length incl. EOS
    dtype: str = "float32"  # compute dtype; "bfloat16": mixed precision, float32 params


class Seq2Seq(NamedTuple):
    """The four transformed functions of a model; they share params.

    - ``train.apply(params, src, src_mask, tgt_in, is_training=False, rng=None)``
      returns ``(logits [B, T, tgt_vocab], attention [B, T, S])``;
    - ``greedy.apply(params, src, src_mask, min_len=0)`` returns tokens
      ``[B, max_tgt_len]`` int32, PAD after EOS (PAD and BOS are never
      decoded otherwise; EOS not before ``min_len`` other tokens);
    - ``beam.apply(params, src, src_mask, beam_size=4, alpha=0.0,
      n_best=None, min_len=0)``: the best beam's tokens, likewise; with
      ``n_best=n`` the :class:`Hypotheses` of the ``n`` best beams.
      ``alpha`` is GNMT's length penalty (``0``: none; ``0.6`` to ``1``
      favour longer outputs). ``beam_size`` and ``n_best`` are static ints;
    - ``sample.apply(params, src, src_mask, temperature=1.0, top_k=0,
      min_len=0, rng=key)``: tokens drawn from the model's distribution at
      ``temperature``, from the ``top_k`` most likely tokens at each step
      (``0``: all). ``top_k`` is a static int.
    """

    train: js.Transformed
    greedy: js.Transformed
    beam: js.Transformed
    sample: js.Transformed


class Hypotheses(NamedTuple):
    """Beam search's n-best list, best first."""

    tokens: jax.Array  # [B, n, max_tgt_len] int32, PAD after EOS
    scores: jax.Array  # [B, n] float32: log-probability / GNMT length penalty


class Memory(NamedTuple):
    """What the encoder hands the decoder; every leaf has batch axis 0."""

    values: jax.Array  # [B, S, D]
    mask: jax.Array  # [B, S] bool
    state: Any = None  # model A: the decoder's initial LSTMState


class _Parts(NamedTuple):
    encode: Callable[..., Memory]  # (src, src_mask, is_training) -> Memory
    decode_train: Callable  # (memory, tgt_in, is_training) -> (logits, attention)
    # (memory, beam_size, capacity) -> (context, state): once, before the loop; capacity:
    # the positions a key/value cache holds at first (see _while_in_segments)
    decode_start: Callable
    decode_step: Callable  # (context, state, seq, t) -> (logits [B, V] at t, state)
    select: Callable  # (state, rows [B']) -> the state of those rows (beam search)


def _select_rows(state: Any, rows: jax.Array) -> Any:
    """The rows ``rows`` of a state whose leaves all have batch axis 0."""
    return jax.tree.map(lambda x: jnp.take(x, rows, axis=0), state)


# Model A: bidirectional LSTM encoder, LSTM decoder with attention.


def _masked_lstm(xs: jax.Array, mask: jax.Array, units: int, reverse: bool):
    """An LSTM over time-major ``xs`` [S, B, E] that skips padding: at a
    masked step the state is carried unchanged and the output is zero, so
    padding (at either end) never affects the states."""

    def step(state, inputs):
        x, m = inputs
        h, new = nn.lstm_cell(x, state, name="lstm_cell")
        new = jax.tree.map(lambda a, b: jnp.where(m[:, None], a, b), new, state)
        return new, jnp.where(m[:, None], h, 0.0)

    initial = nn.LSTMState.zeros(xs.shape[1], units, xs.dtype)
    return js.scan(step, initial, (xs, mask), reverse=reverse)


def _rnn_parts(cfg: ModelConfig) -> _Parts:
    def encode(src, src_mask, is_training):
        x = nn.embedding(src, cfg.src_vocab, cfg.embed_dim, name="embedding")
        x = nn.dropout(x, cfg.dropout, is_training=is_training)
        xs, ms = jnp.swapaxes(x, 0, 1), jnp.swapaxes(src_mask, 0, 1)
        with js.variable_scope("bidirectional_rnn"):
            with js.variable_scope("fw"):
                fw_state, fw_out = _masked_lstm(xs, ms, cfg.hidden // 2, reverse=False)
            with js.variable_scope("bw"):
                bw_state, bw_out = _masked_lstm(xs, ms, cfg.hidden // 2, reverse=True)
        values = jnp.swapaxes(jnp.concatenate([fw_out, bw_out], -1), 0, 1)
        state = jax.tree.map(lambda f, b: jnp.concatenate([f, b], -1), fw_state, bw_state)
        return Memory(values, src_mask, state)

    def cell(memory, keys, carry, y, is_training):
        """One decoder step: LSTM on [y, previous attention vector] (input
        feeding), attention on its output, the new attention vector."""
        state, attention_vector = carry
        h, state = nn.lstm_cell(jnp.concatenate([y, attention_vector], -1), state, name="lstm_cell")
        context, weights = nn.bahdanau_attention(
            h, keys, memory.values, memory.mask, normalize=True, name="bahdanau_attention"
        )
        attention_vector = nn.dense(
            jnp.concatenate([h, context], -1),
            cfg.hidden,
            jnp.tanh,
            use_bias=False,
            name="attention_layer",
        )
        attention_vector = nn.dropout(attention_vector, cfg.dropout, is_training=is_training)
        return (state, attention_vector), (attention_vector, weights)

    def embed(tokens, is_training):
        y = nn.embedding(tokens, cfg.tgt_vocab, cfg.embed_dim, name="embedding")
        return nn.dropout(y, cfg.dropout, is_training=is_training)

    def project(attention_vector):
        return nn.dense(attention_vector, cfg.tgt_vocab, name="output_projection")

    def start(memory):
        keys = nn.dense(memory.values, cfg.hidden, use_bias=False, name="memory_layer")
        batch = memory.values.shape[0]
        return keys, (memory.state, jnp.zeros((batch, cfg.hidden), memory.values.dtype))

    def decode_train(memory, tgt_in, is_training):
        ys = jnp.swapaxes(embed(tgt_in, is_training), 0, 1)
        keys, carry = start(memory)

        def step(carry, y):
            return cell(memory, keys, carry, y, is_training)

        _, (outputs, weights) = js.scan(step, carry, ys)
        logits = project(jnp.swapaxes(outputs, 0, 1))
        return logits, jnp.swapaxes(weights, 0, 1)

    def decode_start(memory, beam_size, capacity):
        keys, carry = start(memory)
        return (memory, keys), carry

    def decode_step(context, carry, seq, t):
        memory, keys = context
        y = embed(jax.lax.dynamic_index_in_dim(seq, t, axis=1, keepdims=False), False)
        carry, (attention_vector, _) = cell(memory, keys, carry, y, False)
        return project(attention_vector), carry

    return _Parts(encode, decode_train, decode_start, decode_step, _select_rows)


# Model B: Transformer encoder-decoder with js.layer_stack.


def _positional_encoding(positions: jax.Array, dim: int) -> jax.Array:
    """The sinusoidal encodings of Vaswani et al. (no variables) of
    ``positions`` [T]: ``[T, dim]``."""
    position = jnp.asarray(positions, jnp.float32)[:, None]
    rates = jnp.exp(-math.log(10000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = position * rates
    encoding = jnp.zeros((position.shape[0], dim), jnp.float32)
    encoding = encoding.at[:, 0::2].set(jnp.sin(angles))
    return encoding.at[:, 1::2].set(jnp.cos(angles[:, : dim // 2]))


def _transformer_parts(cfg: ModelConfig) -> _Parts:
    d = cfg.embed_dim
    # epsilon 1e-6 (Flax's), not TF1's 1e-12: this model is not a TF1 port.
    layer_norm = functools.partial(nn.layer_norm, epsilon=1e-6, name="LayerNorm")

    def drop(x, is_training):
        return nn.dropout(x, cfg.dropout, is_training=is_training)

    def attention_block(
        x, name, *, self_attention, memory=None, mask=None, cache=None, is_training=False
    ):
        """Pre-LayerNorm attention and its residual: self-attention, or
        cross-attention to ``memory``; with a ``cache``, over the cached
        positions (self-attention) or the cached memory (``memory=None``).
        Returns ``(x, weights, cache)`` (the cache ``None`` without one).
        The weights are always computed, so that training and both ways of
        decoding attend the same (explicit) way."""
        with js.variable_scope(name):
            y = layer_norm(x)
            out, weights, *cache = nn.multi_head_attention(
                y,
                y if self_attention else memory,
                mask,
                num_heads=cfg.num_heads,
                return_weights=True,
                cache=cache,
                name="multihead_attention",
            )
        return x + drop(out, is_training), weights, cache[0] if cache else None

    def feed_forward(x, is_training):
        with js.variable_scope("ffn"):
            y = layer_norm(x)
            y = nn.dense(y, cfg.hidden, jax.nn.relu, name="dense")
            y = nn.dense(y, d, name="dense_1")
        return x + drop(y, is_training)

    def encoder_layer(x, mask, is_training):
        x, _, _ = attention_block(
            x, "self_attention", self_attention=True, mask=mask, is_training=is_training
        )
        return feed_forward(x, is_training)

    def decoder_layer(carry, memory, self_mask, memory_mask, is_training):
        x, _ = carry
        x, _, _ = attention_block(
            x, "self_attention", self_attention=True, mask=self_mask, is_training=is_training
        )
        x, weights, _ = attention_block(
            x,
            "cross_attention",
            self_attention=False,
            memory=memory,
            mask=memory_mask,
            is_training=is_training,
        )
        return feed_forward(x, is_training), jnp.mean(weights, axis=-3)

    def cached_decoder_layer(x, self_cache, memory_cache, memory_mask):
        """The decoder layer on the newest position, through its caches;
        returns the new self-attention cache (the memory's stays as it is)."""
        x, _, self_cache = attention_block(
            x, "self_attention", self_attention=True, cache=self_cache
        )
        x, _, _ = attention_block(
            x, "cross_attention", self_attention=False, mask=memory_mask, cache=memory_cache
        )
        return feed_forward(x, False), self_cache

    def embed(tokens, vocab, is_training, position=None):
        """Embeddings plus positional encodings: of positions ``0..T-1``, or
        of the single position ``position`` (``tokens`` ``[B, 1]``)."""
        table_init = js.initializers.random_normal(0.0, d**-0.5)
        x = nn.embedding(tokens, vocab, d, initializer=table_init, name="embedding")
        if position is None:
            encoding = _positional_encoding(jnp.arange(tokens.shape[-1]), d)
        else:
            encoding = _positional_encoding(jnp.reshape(position, [1]), d)
        return drop(x * math.sqrt(d) + encoding.astype(x.dtype), is_training)

    def encode(src, src_mask, is_training):
        x = embed(src, cfg.src_vocab, is_training)
        with js.variable_scope("layers"):
            x = js.layer_stack(cfg.num_layers)(encoder_layer)(
                x, src_mask[:, None, None, :], is_training
            )
        return Memory(layer_norm(x), src_mask)

    def output(x):
        return nn.embedding.attend(layer_norm(x), name="embedding")  # tied output

    def decode_train(memory, tgt_in, is_training):
        x = embed(tgt_in, cfg.tgt_vocab, is_training)
        length = tgt_in.shape[1]
        carry = (x, jnp.zeros((*tgt_in.shape, memory.values.shape[1]), x.dtype))
        args = (memory.values, nn.causal_mask(length), memory.mask[:, None, None, :], is_training)
        with js.variable_scope("layers"):
            x, weights = js.layer_stack(cfg.num_layers)(decoder_layer)(carry, *args)
        return output(x), weights

    # The caches are lists with one item per layer (per_layer_lists): each
    # layer's cache an array of its own in the decoding loop's carry, which
    # XLA updates in place; stacked caches would be copied in and out of the
    # layer stack at every step.
    per_layer = functools.partial(
        js.layer_stack, cfg.num_layers, with_per_layer_inputs=True, per_layer_lists=True
    )

    def decode_start(memory, beam_size, capacity):
        """The memory's keys and values in every layer, computed once, and
        empty self-attention caches of ``capacity`` positions; for beam
        search (``beam_size`` rows per example, beam-major), caches that
        reorder the beams through their ``origin`` indices rather than by
        copying their rows."""

        def memory_layer(x):
            with js.variable_scope("cross_attention"):
                cache = nn.memory_cache(
                    memory.values, num_heads=cfg.num_heads, name="multihead_attention"
                )
            return x, cache

        with js.variable_scope("layers"):
            _, memory_caches = per_layer()(memory_layer)(jnp.zeros(()))
        rows = memory.values.shape[0]
        empty = nn.KVCache.zeros(
            [rows // beam_size, beam_size] if beam_size > 1 else [rows],
            capacity,
            num_heads=cfg.num_heads,
            key_size=d // cfg.num_heads,
            dtype=memory.values.dtype,
            beams=beam_size > 1,
        )
        return (memory.mask[:, None, None, :], memory_caches), [empty] * cfg.num_layers

    def decode_step(context, caches, seq, t):
        """The decoder on position ``t`` alone, each layer through its caches."""
        memory_mask, memory_caches = context
        token = jax.lax.dynamic_slice_in_dim(seq, t, 1, axis=1)
        x = embed(token, cfg.tgt_vocab, False, position=t)
        with js.variable_scope("layers"):
            x, caches = per_layer()(cached_decoder_layer)(
                x, caches, memory_caches, memory_mask=memory_mask
            )
        return output(x)[:, 0], caches

    def select(caches, rows):
        return [cache.take_rows(rows) for cache in caches]

    return _Parts(encode, decode_train, decode_start, decode_step, select)


def _uncached(parts: _Parts) -> _Parts:
    """``parts`` decoding without a cache: every step runs the teacher-forcing
    decoder over the whole prefix (the output buffer, causally masked) and
    takes the logits at ``t``."""

    def decode_start(memory, beam_size, capacity):
        return memory, ()

    def decode_step(memory, state, seq, t):
        logits, _ = parts.decode_train(memory, seq[:, :-1], False)
        return jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False), state

    return parts._replace(decode_start=decode_start, decode_step=decode_step, select=_select_rows)


# Search: model-agnostic, over a decode_step.


def _segment_ends(max_len: int) -> list[int]:
    """The last step (exclusive) of each segment of a decode of ``max_len``
    steps through key/value caches: 16, 32, ..., then growing by a quarter
    at a time in multiples of 16 (..., 128, 160, 192, 240, ...), and ``max_len``.

    >>> _segment_ends(12), _segment_ends(40), _segment_ends(256)[-5:]
    ([12], [16, 32, 40], [128, 160, 192, 240, 256])
    """
    ends, end = [], _SEGMENT
    while end < max_len:
        ends.append(end)
        end += max(_SEGMENT, end // 4 // _SEGMENT * _SEGMENT)
    return [*ends, max_len]


def _is_cache(x: Any) -> bool:
    return isinstance(x, nn.KVCache)


def _while_in_segments(cond: Callable, body: Callable, loop: tuple, max_len: int) -> tuple:
    """``js.while_loop(cond, body, loop)`` over the steps ``loop[0]``, the
    decoder's state last in ``loop``. A state holding key/value caches,
    made with room for the first segment's steps, runs in segments
    (:func:`_segment_ends`), its caches grown to the segment's end first:
    step ``t`` attends to at most 16 or ``t / 4`` positions more than the
    ``t + 1`` it needs, where caches of ``max_len`` positions would have
    every step attend to all of them. Each segment compiles the body anew,
    and draws its own stream of ``js.next_rng_key()`` keys."""
    leaves = jax.tree.leaves(loop[-1], is_leaf=_is_cache)
    if not any(map(_is_cache, leaves)):
        return js.while_loop(cond, body, loop)
    for end in _segment_ends(max_len):
        state = jax.tree.map(
            lambda x, end=end: x.grow(end) if _is_cache(x) else x, loop[-1], is_leaf=_is_cache
        )

        def within(loop, end=end):
            return cond(loop) & (loop[0] < end)

        loop = js.while_loop(within, body, (*loop[:-1], state))
    return loop


def _log_probs(logits: jax.Array, t: jax.Array, min_len: Any) -> jax.Array:
    """Log-probabilities of token ``t`` (0-based), in float32. PAD and BOS
    are never decoded: PAD only fills the rows that have ended, BOS only
    starts them; EOS not before ``min_len`` other tokens."""
    vocab = jnp.arange(logits.shape[-1])
    never = (vocab == PAD_ID) | (vocab == BOS_ID) | ((vocab == EOS_ID) & (t < min_len))
    return jax.nn.log_softmax(jnp.where(never, _NEG_INF, logits.astype(jnp.float32)))


def length_penalty(length: Any, alpha: Any) -> jax.Array:
    """GNMT's length penalty (Wu et al., 2016): ``((5 + length) / 6) ** alpha``.

    Beam search ranks hypotheses by log-probability divided by it: ``alpha =
    0`` ranks by log-probability alone, larger ``alpha`` favours longer ones.

    >>> float(length_penalty(1, 0.6)), float(length_penalty(7, 0.0))
    (1.0, 1.0)
    """
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _one_at_a_time(
    step: Callable, state: Any, batch: int, max_len: int, min_len: Any, pick: Callable
) -> jax.Array:
    """Decodes ``batch`` rows, each step's token ``pick(log_probs [B, V])``."""
    seq = jnp.full((batch, max_len + 1), PAD_ID, jnp.int32).at[:, 0].set(BOS_ID)

    def cond(loop):
        t, _, finished, _ = loop
        return (t < max_len) & ~jnp.all(finished)

    def body(loop):
        t, seq, finished, state = loop
        logits, state = step(state, seq, t)
        token = pick(_log_probs(logits, t, min_len)).astype(jnp.int32)
        token = jnp.where(finished, PAD_ID, token)
        seq = jax.lax.dynamic_update_slice(seq, token[:, None], (0, t + 1))
        return t + 1, seq, finished | (token == EOS_ID), state

    start = (jnp.int32(0), seq, jnp.zeros(batch, bool), state)
    return _while_in_segments(cond, body, start, max_len)[1][:, 1:]


def _greatest(log_probs: jax.Array) -> jax.Array:
    return jnp.argmax(log_probs, axis=-1)


def _draw(log_probs: jax.Array, temperature: Any, top_k: int) -> jax.Array:
    """A token drawn from ``softmax(log_probs / temperature)`` restricted to
    the ``top_k`` most likely tokens (``0``: all), with the step's key."""
    logits = log_probs / temperature
    if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(js.next_rng_key(), logits)


def _beam_search(
    step: Callable,
    select: Callable,
    state: Any,
    batch: int,
    beam_size: int,
    max_len: int,
    alpha: Any,
    min_len: Any,
) -> Hypotheses:
    """Beam search over ``step``, whose batch is ``batch * beam_size`` rows
    (beam-major within each example). Hypotheses are ranked by summed
    log-probability over GNMT's length penalty of their length (EOS
    included); a finished beam continues with PAD at no cost, keeping its
    length, and the search stops when every beam has finished. Returns
    every beam, best first."""
    seq = jnp.full((batch, beam_size, max_len + 1), PAD_ID, jnp.int32).at[:, :, 0].set(BOS_ID)
    # All beams start identical: only the first one may expand at step 0.
    raw = jnp.where(jnp.arange(beam_size) == 0, 0.0, _NEG_INF) * jnp.ones((batch, 1))
    lengths = jnp.zeros((batch, beam_size), jnp.int32)
    first_row = jnp.arange(batch)[:, None] * beam_size

    def cond(loop):
        t, _, _, _, finished, _ = loop
        return (t < max_len) & ~jnp.all(finished)

    def body(loop):
        t, seq, raw, lengths, finished, state = loop
        logits, state = step(state, seq.reshape(batch * beam_size, -1), t)
        vocab = logits.shape[-1]
        log_probs = _log_probs(logits, t, min_len).reshape(batch, beam_size, vocab)
        pad_only = jnp.where(jnp.arange(vocab) == PAD_ID, 0.0, _NEG_INF)
        log_probs = jnp.where(finished[..., None], pad_only, log_probs)
        candidates = raw[..., None] + log_probs
        candidate_lengths = jnp.where(finished, lengths, t + 1)
        ranked = candidates / length_penalty(candidate_lengths, alpha)[..., None]
        _, index = jax.lax.top_k(ranked.reshape(batch, beam_size * vocab), beam_size)
        origin, token = index // vocab, (index % vocab).astype(jnp.int32)
        raw = jnp.take_along_axis(candidates.reshape(batch, -1), index, axis=1)
        lengths = jnp.take_along_axis(candidate_lengths, origin, axis=1)
        seq = jnp.take_along_axis(seq, origin[..., None], axis=1)
        seq = jax.lax.dynamic_update_slice(seq, token[..., None], (0, 0, t + 1))
        finished = jnp.take_along_axis(finished, origin, axis=1) | (token == EOS_ID)
        state = select(state, (first_row + origin).reshape(-1))
        return t + 1, seq, raw, lengths, finished, state

    finished = jnp.zeros((batch, beam_size), bool)
    start = (jnp.int32(0), seq, raw, lengths, finished, state)
    _, seq, raw, lengths, _, _ = _while_in_segments(cond, body, start, max_len)
    # top_k keeps the beams sorted by their ranking score: beam 0 is the best.
    return Hypotheses(seq[:, :, 1:], raw / length_penalty(lengths, alpha))


def _in_precision(fn: Callable, policy: js.precision.Policy) -> Callable:
    """``fn`` under ``policy``: its root scope's custom getter hands out the
    float32 params cast to the compute dtype (every scope below inherits it,
    the ``reuse=True`` ones of the decoders included), and its floating
    outputs are cast to the policy's output dtype."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        js.get_variable_scope().set_custom_getter(policy.getter)
        return policy.cast_to_output(fn(*args, **kwargs))

    return wrapped


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive Python int, got {value!r}")


def build(cfg: ModelConfig, *, cached: bool = True) -> Seq2Seq:
    """The model ``cfg.model`` as its ``train``, ``greedy``, ``beam`` and
    ``sample`` transforms (see :class:`Seq2Seq`). With ``cached=False`` the
    decoders run the whole prefix at every step (see the module's doc). The
    model computes in ``cfg.dtype``."""
    if cfg.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"unknown dtype {cfg.dtype!r}: expected 'float32' or 'bfloat16'")
    if cfg.model == "rnn":
        if cfg.hidden % 2:
            raise ValueError(f"model 'rnn' needs an even hidden size, got {cfg.hidden}")
        parts = _rnn_parts(cfg)
    elif cfg.model == "transformer":
        if cfg.embed_dim % cfg.num_heads or cfg.embed_dim % 2:
            raise ValueError(
                f"model 'transformer' needs an even embed_dim divisible by num_heads, "
                f"got embed_dim={cfg.embed_dim}, num_heads={cfg.num_heads}"
            )
        parts = _transformer_parts(cfg)
    else:
        raise ValueError(f"unknown model {cfg.model!r}: expected 'rnn' or 'transformer'")
    if not cached:
        parts = _uncached(parts)

    def train(src, src_mask, tgt_in, is_training=False):
        with js.variable_scope("encoder"):
            memory = parts.encode(src, src_mask, is_training)
        with js.variable_scope("decoder"):
            return parts.decode_train(memory, tgt_in, is_training)

    def decoding(src, src_mask, copies, search):
        """``search(step, state)`` over the decoder, reusing the encoder's and
        decoder's variables, with ``copies`` rows per example."""
        with js.variable_scope("encoder", reuse=True):
            memory = parts.encode(src, src_mask, False)
        memory = jax.tree.map(lambda x: jnp.repeat(x, copies, axis=0), memory)
        with js.variable_scope("decoder", reuse=True):
            capacity = _segment_ends(cfg.max_tgt_len)[0]
            context, state = parts.decode_start(memory, copies, capacity)
            return search(functools.partial(parts.decode_step, context), state)

    def greedy(src, src_mask, min_len=0):
        def search(step, state):
            return _one_at_a_time(step, state, src.shape[0], cfg.max_tgt_len, min_len, _greatest)

        return decoding(src, src_mask, 1, search)

    def sample(src, src_mask, temperature=1.0, top_k=0, min_len=0):
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 0 <= top_k <= cfg.tgt_vocab:
            raise ValueError(
                f"top_k must be a Python int from 0 (all tokens) to the vocabulary's "
                f"{cfg.tgt_vocab}, got {top_k!r}"
            )
        if isinstance(temperature, (int, float)) and temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        pick = functools.partial(_draw, temperature=temperature, top_k=top_k)

        def search(step, state):
            return _one_at_a_time(step, state, src.shape[0], cfg.max_tgt_len, min_len, pick)

        return decoding(src, src_mask, 1, search)

    def beam(src, src_mask, beam_size=4, alpha=0.0, n_best=None, min_len=0):
        _positive_int("beam_size", beam_size)
        if n_best is not None:
            _positive_int("n_best", n_best)
            if n_best > beam_size:
                raise ValueError(f"n_best ({n_best}) cannot exceed beam_size ({beam_size})")

        def search(step, state):
            batch = src.shape[0]
            return _beam_search(
                step, parts.select, state, batch, beam_size, cfg.max_tgt_len, alpha, min_len
            )

        hypotheses = decoding(src, src_mask, beam_size, search)
        if n_best is None:
            return hypotheses.tokens[:, 0]
        return Hypotheses(hypotheses.tokens[:, :n_best], hypotheses.scores[:, :n_best])

    functions = (train, greedy, beam, sample)
    if cfg.dtype != "float32":
        policy = js.precision.Policy(compute_dtype=cfg.dtype, output_dtype=jnp.float32)
        functions = tuple(_in_precision(fn, policy) for fn in functions)
    return Seq2Seq(*(js.transform(fn) for fn in functions))
