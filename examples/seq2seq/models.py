"""Sequence-to-sequence models written with variable scopes, TF1 style.

Model A (``model="rnn"``): a bidirectional LSTM encoder and an LSTM decoder
with Bahdanau attention and input feeding, both run over time with
``js.scan``. Model B (``model="transformer"``): a small pre-LayerNorm
Transformer whose encoder and decoder layers are ``js.layer_stack`` s.

Each model is three functions sharing one set of variables by name:

- ``train`` (teacher forcing) creates everything, under the scopes
  ``encoder`` and ``decoder``;
- ``greedy`` and ``beam`` are separate inference functions that enter
  ``js.variable_scope("encoder", reuse=True)`` and
  ``js.variable_scope("decoder", reuse=True)`` and decode with
  ``js.while_loop``, stopping once every sequence has emitted EOS. They
  create nothing: their ``init`` fails with ``VariableMissingError``, and
  their ``apply`` runs on the params ``train.init`` made (or training
  produced), exactly as a TF1 inference graph built under ``reuse=True``.

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
    """The three transformed functions of a model; they share params.

    - ``train.apply(params, src, src_mask, tgt_in, is_training=False, rng=None)``
      returns ``(logits [B, T, tgt_vocab], attention [B, T, S])``;
    - ``greedy.apply(params, src, src_mask)`` returns tokens
      ``[B, max_tgt_len]`` int32, PAD after EOS (PAD and BOS are never
      decoded otherwise);
    - ``beam.apply(params, src, src_mask, beam_size=4)`` likewise
      (``beam_size`` a static Python int).
    """

    train: js.Transformed
    greedy: js.Transformed
    beam: js.Transformed


class Memory(NamedTuple):
    """What the encoder hands the decoder; every leaf has batch axis 0."""

    values: jax.Array  # [B, S, D]
    mask: jax.Array  # [B, S] bool
    state: Any = None  # model A: the decoder's initial LSTMState


class _Parts(NamedTuple):
    encode: Callable[..., Memory]  # (src, src_mask, is_training) -> Memory
    decode_train: Callable  # (memory, tgt_in, is_training) -> (logits, attention)
    decode_start: Callable  # (memory) -> (context, state): once, before the loop
    decode_step: Callable  # (context, state, seq, t) -> (logits [B, V], state)


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

    def decode_start(memory):
        keys, carry = start(memory)
        return (memory, keys), carry

    def decode_step(context, carry, seq, t):
        memory, keys = context
        y = embed(jax.lax.dynamic_index_in_dim(seq, t, axis=1, keepdims=False), False)
        carry, (attention_vector, _) = cell(memory, keys, carry, y, False)
        return project(attention_vector), carry

    return _Parts(encode, decode_train, decode_start, decode_step)


# Model B: Transformer encoder-decoder with js.layer_stack.


def _positional_encoding(length: int, dim: int) -> jax.Array:
    """The sinusoidal encodings of Vaswani et al. (no variables)."""
    position = jnp.arange(length, dtype=jnp.float32)[:, None]
    rates = jnp.exp(-math.log(10000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = position * rates
    encoding = jnp.zeros((length, dim), jnp.float32)
    encoding = encoding.at[:, 0::2].set(jnp.sin(angles))
    return encoding.at[:, 1::2].set(jnp.cos(angles[:, : dim // 2]))


def _stacked_layer(index: int) -> Callable:
    """A custom getter that hands a layer the ``index``-th slice of the
    variables ``js.layer_stack`` stores with a leading layer axis.

    The inference decoder runs its layers in a Python loop through it, since
    a ``js.layer_stack`` cannot run inside ``js.while_loop``."""

    def getter(getter, name, **kwargs):
        kwargs["shape"] = None  # the stored shape has the extra layer axis
        return getter(name, **kwargs)[index]

    return getter


def _transformer_parts(cfg: ModelConfig) -> _Parts:
    d = cfg.embed_dim
    # epsilon 1e-6 (Flax's), not TF1's 1e-12: this model is not a TF1 port.
    layer_norm = functools.partial(nn.layer_norm, epsilon=1e-6, name="LayerNorm")

    def drop(x, is_training):
        return nn.dropout(x, cfg.dropout, is_training=is_training)

    def attention_block(x, memory, mask, is_training, name):
        with js.variable_scope(name):
            y = layer_norm(x)
            y, weights = nn.multi_head_attention(
                y,
                y if memory is None else memory,
                mask,
                num_heads=cfg.num_heads,
                return_weights=True,
                name="multihead_attention",
            )
        return x + drop(y, is_training), weights

    def feed_forward(x, is_training):
        with js.variable_scope("ffn"):
            y = layer_norm(x)
            y = nn.dense(y, cfg.hidden, jax.nn.relu, name="dense")
            y = nn.dense(y, d, name="dense_1")
        return x + drop(y, is_training)

    def encoder_layer(x, mask, is_training):
        x, _ = attention_block(x, None, mask, is_training, "self_attention")
        return feed_forward(x, is_training)

    def decoder_layer(carry, memory, self_mask, memory_mask, is_training):
        x, _ = carry
        x, _ = attention_block(x, None, self_mask, is_training, "self_attention")
        x, weights = attention_block(x, memory, memory_mask, is_training, "cross_attention")
        return feed_forward(x, is_training), jnp.mean(weights, axis=-3)

    def embed(tokens, vocab, is_training):
        table_init = js.initializers.random_normal(0.0, d**-0.5)
        x = nn.embedding(tokens, vocab, d, initializer=table_init, name="embedding")
        x = x * math.sqrt(d) + _positional_encoding(tokens.shape[-1], d).astype(x.dtype)
        return drop(x, is_training)

    def encode(src, src_mask, is_training):
        x = embed(src, cfg.src_vocab, is_training)
        with js.variable_scope("layers"):
            x = js.layer_stack(cfg.num_layers)(encoder_layer)(
                x, src_mask[:, None, None, :], is_training
            )
        return Memory(layer_norm(x), src_mask)

    def decode(memory, tgt_in, is_training, stacked):
        x = embed(tgt_in, cfg.tgt_vocab, is_training)
        length = tgt_in.shape[1]
        carry = (x, jnp.zeros((*tgt_in.shape, memory.values.shape[1]), x.dtype))
        args = (memory.values, nn.causal_mask(length), memory.mask[:, None, None, :], is_training)
        if stacked:
            with js.variable_scope("layers"):
                carry = js.layer_stack(cfg.num_layers)(decoder_layer)(carry, *args)
        else:
            for i in range(cfg.num_layers):
                with js.variable_scope("layers", custom_getter=_stacked_layer(i)):
                    carry = decoder_layer(carry, *args)
        x, weights = carry
        x = layer_norm(x)
        return nn.embedding.attend(x, name="embedding"), weights  # tied output

    def decode_train(memory, tgt_in, is_training):
        return decode(memory, tgt_in, is_training, stacked=True)

    def decode_start(memory):
        return memory, ()

    def decode_step(memory, state, seq, t):
        # The whole prefix again, causally masked: simple, and the logits at
        # t are those teacher forcing computes for the same prefix.
        logits, _ = decode(memory, seq[:, :-1], False, stacked=False)
        return jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False), state

    return _Parts(encode, decode_train, decode_start, decode_step)


# Search: model-agnostic, over a decode_step.


def _log_probs(logits: jax.Array) -> jax.Array:
    """Log-probabilities of the next token, in float32. PAD and BOS are never
    decoded: PAD only fills the rows that have ended, BOS only starts them."""
    vocab = jnp.arange(logits.shape[-1])
    special = (vocab == PAD_ID) | (vocab == BOS_ID)
    return jax.nn.log_softmax(jnp.where(special, _NEG_INF, logits.astype(jnp.float32)))


def _greedy_search(step: Callable, state: Any, batch: int, max_len: int) -> jax.Array:
    seq = jnp.full((batch, max_len + 1), PAD_ID, jnp.int32).at[:, 0].set(BOS_ID)

    def cond(loop):
        t, _, finished, _ = loop
        return (t < max_len) & ~jnp.all(finished)

    def body(loop):
        t, seq, finished, state = loop
        logits, state = step(state, seq, t)
        token = jnp.argmax(_log_probs(logits), axis=-1).astype(jnp.int32)
        token = jnp.where(finished, PAD_ID, token)
        seq = jax.lax.dynamic_update_slice(seq, token[:, None], (0, t + 1))
        return t + 1, seq, finished | (token == EOS_ID), state

    start = (jnp.int32(0), seq, jnp.zeros(batch, bool), state)
    return js.while_loop(cond, body, start)[1][:, 1:]


def _beam_search(step: Callable, state: Any, batch: int, beam_size: int, max_len: int) -> jax.Array:
    """Beam search over ``step``, whose batch is ``batch * beam_size`` rows
    (beam-major within each example). Scores are summed log-probabilities;
    a finished beam continues with PAD at no cost. Returns the best beam."""
    seq = jnp.full((batch, beam_size, max_len + 1), PAD_ID, jnp.int32).at[:, :, 0].set(BOS_ID)
    # All beams start identical: only the first one may expand at step 0.
    scores = jnp.where(jnp.arange(beam_size) == 0, 0.0, _NEG_INF) * jnp.ones((batch, 1))

    def reorder(x, origin):  # x: [batch * beam, ...]; origin: [batch, beam]
        x = x.reshape(batch, beam_size, *x.shape[1:])
        x = jnp.take_along_axis(x, origin.reshape(*origin.shape, *([1] * (x.ndim - 2))), axis=1)
        return x.reshape(batch * beam_size, *x.shape[2:])

    def cond(loop):
        t, _, _, finished, _ = loop
        return (t < max_len) & ~jnp.all(finished)

    def body(loop):
        t, seq, scores, finished, state = loop
        logits, state = step(state, seq.reshape(batch * beam_size, -1), t)
        vocab = logits.shape[-1]
        log_probs = _log_probs(logits).reshape(batch, beam_size, vocab)
        pad_only = jnp.where(jnp.arange(vocab) == PAD_ID, 0.0, _NEG_INF)
        log_probs = jnp.where(finished[..., None], pad_only, log_probs)
        candidates = (scores[..., None] + log_probs).reshape(batch, beam_size * vocab)
        scores, index = jax.lax.top_k(candidates, beam_size)
        origin, token = index // vocab, (index % vocab).astype(jnp.int32)
        seq = jnp.take_along_axis(seq, origin[..., None], axis=1)
        seq = jax.lax.dynamic_update_slice(seq, token[..., None], (0, 0, t + 1))
        finished = jnp.take_along_axis(finished, origin, axis=1) | (token == EOS_ID)
        state = jax.tree.map(lambda x: reorder(x, origin), state)
        return t + 1, seq, scores, finished, state

    start = (jnp.int32(0), seq, scores, jnp.zeros((batch, beam_size), bool), state)
    seq = js.while_loop(cond, body, start)[1]
    return seq[:, 0, 1:]  # top_k keeps the beams sorted: beam 0 is the best


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


def build(cfg: ModelConfig) -> Seq2Seq:
    """The model ``cfg.model`` as its ``train``, ``greedy`` and ``beam``
    transforms (see :class:`Seq2Seq`), in ``cfg.dtype``."""
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

    def train(src, src_mask, tgt_in, is_training=False):
        with js.variable_scope("encoder"):
            memory = parts.encode(src, src_mask, is_training)
        with js.variable_scope("decoder"):
            return parts.decode_train(memory, tgt_in, is_training)

    def encode(src, src_mask, copies):
        """The encoder, reusing its variables, with ``copies`` rows per example."""
        with js.variable_scope("encoder", reuse=True):
            memory = parts.encode(src, src_mask, False)
        return jax.tree.map(lambda x: jnp.repeat(x, copies, axis=0), memory)

    def greedy(src, src_mask):
        memory = encode(src, src_mask, 1)
        with js.variable_scope("decoder", reuse=True):
            context, state = parts.decode_start(memory)
            step = functools.partial(parts.decode_step, context)
            return _greedy_search(step, state, src.shape[0], cfg.max_tgt_len)

    def beam(src, src_mask, beam_size=4):
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size must be a positive Python int, got {beam_size!r}")
        memory = encode(src, src_mask, beam_size)
        with js.variable_scope("decoder", reuse=True):
            context, state = parts.decode_start(memory)
            step = functools.partial(parts.decode_step, context)
            return _beam_search(step, state, src.shape[0], beam_size, cfg.max_tgt_len)

    functions = (train, greedy, beam)
    if cfg.dtype != "float32":
        policy = js.precision.Policy(compute_dtype=cfg.dtype, output_dtype=jnp.float32)
        functions = tuple(_in_precision(fn, policy) for fn in functions)
    return Seq2Seq(*(js.transform(fn) for fn in functions))
