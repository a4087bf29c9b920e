"""Model A of the seq2seq example written five ways: recurrence over time.

The attention RNN of ``examples/seq2seq/models.py`` at the size of its demo
(``python -m examples.seq2seq.train --task dates --model rnn``): character
embeddings, a bidirectional LSTM encoder that skips padding, and an LSTM
decoder with weight-normalized Bahdanau attention and input feeding, run
over time with a scan, then an output projection. The figures are of its
teacher-forced training forward (``train`` in the example, returning the
logits) and the masked token cross-entropy the example trains with.

The jaxscope version *is* the example's model, built from the demo's
config, so the benchmark measures what the demo runs. The others compute
the same function: pure JAX (the baseline) and flax.core by hand with TF1's
names and LSTM layout (one ``[in + units, 4 * units]`` kernel, gates
``i, j, f, o``, forget bias 1.0), op for op as the example computes it, so
that jaxscope's compiled train step can be pure JAX's XLA program
(flax.core's is too); flax.linen with ``nn.Bidirectional``, ``nn.RNN``,
``nn.LSTMCell`` and ``nn.scan``, and Haiku with ``hk.LSTM`` and
``hk.scan``, as their users write it. flax's ``LSTMCell`` keeps one kernel per gate and input (and no
forget bias: the converters move it into the forget gate's bias), so its
outputs equal the baseline's up to float32 round-off; ``hk.LSTM`` has TF1's
layout.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.models import Impl, ModelSpec, build_impls, flax_core_impl, identity

__all__ = ["build", "demo_config", "flax_core", "flax_linen", "haiku", "jaxscope", "pure_jax"]

# The quick (smoke-test) sizes; the full ones are the demo's (demo_config).
QUICK = dict(src_vocab=11, tgt_vocab=13, embed_dim=8, hidden=8, batch=4, src_len=7, tgt_len=5)

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # as in examples/seq2seq
FORGET_BIAS = 1.0  # TF1's LSTMCell default, as js.nn.lstm_cell

_glorot = jax.nn.initializers.glorot_uniform()
# TF1's Glorot-uniform of a vector (fan = its length), as js.initializers'.
_glorot_vector = jax.nn.initializers.variance_scaling(
    1.0, "fan_avg", "uniform", in_axis=(), out_axis=()
)
_zeros = jax.nn.initializers.zeros


# The math every version shares, on arrays (the variables are each
# framework's business).


def _lstm(kernel: jax.Array, bias: jax.Array, x: jax.Array, state: tuple) -> tuple:
    """One step of ``js.nn.lstm_cell``: TF1's layout and gate order."""
    c, h = state
    z = jnp.concatenate([x, h], axis=-1) @ kernel + bias
    i, j, f, o = jnp.split(z, 4, axis=-1)
    new_c = jax.nn.sigmoid(f + FORGET_BIAS) * c + jax.nn.sigmoid(i) * jnp.tanh(j)
    new_h = jnp.tanh(new_c) * jax.nn.sigmoid(o)
    return new_h, (new_c, new_h)


def _keep_where(m: jax.Array, new: Any, old: Any) -> Any:
    """The masked LSTM's update: ``new`` on the rows where ``m``, else ``old``."""
    return jax.tree.map(lambda a, b: jnp.where(m[:, None], a, b), new, old)


def _masked_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """``js.nn.masked_softmax`` over the last axis."""
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits, axis=-1)
    any_valid = jnp.any(mask, axis=-1, keepdims=True)
    return jnp.where(mask | ~any_valid, weights, 0.0)


def _bahdanau(processed, v, g, b, keys, values, mask) -> tuple[jax.Array, jax.Array]:
    """``js.nn.bahdanau_attention(..., normalize=True)`` after the query
    layer: ``processed`` is ``query @ query_layer/kernel``."""
    v = g * v * jax.lax.rsqrt(jnp.sum(jnp.square(v)))
    processed = processed + b
    scores = jnp.sum(v * jnp.tanh(keys + processed[..., None, :]), axis=-1)
    weights = _masked_softmax(scores, mask)
    context = jnp.einsum("...s,...sd->...d", weights, values.astype(weights.dtype))
    return context, weights


def _time_major(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, 0, 1)


def _concat_states(fw: Any, bw: Any) -> Any:
    return jax.tree.map(lambda f, b: jnp.concatenate([f, b], -1), fw, bw)


def _lstm_params(rng: jax.Array, fan_in: int, units: int) -> dict:
    return {
        "kernel": _glorot(rng, (fan_in + units, 4 * units), jnp.float32),
        "bias": jnp.zeros((4 * units,), jnp.float32),
    }


def pure_jax(cfg: Any) -> Impl:
    """Hand-written JAX with an explicit params dict under TF1's names,
    ``jax.lax.scan`` over time: the baseline."""
    e, hidden = cfg.embed_dim, cfg.hidden

    def init(rng: jax.Array, src, src_mask, tgt_in) -> dict:
        k = iter(jax.random.split(rng, 10))
        units = hidden // 2
        return {
            "encoder": {
                "embedding": {"embeddings": _glorot(next(k), (cfg.src_vocab, e), jnp.float32)},
                "bidirectional_rnn": {
                    "fw": {"lstm_cell": _lstm_params(next(k), e, units)},
                    "bw": {"lstm_cell": _lstm_params(next(k), e, units)},
                },
            },
            "decoder": {
                "embedding": {"embeddings": _glorot(next(k), (cfg.tgt_vocab, e), jnp.float32)},
                "memory_layer": {"kernel": _glorot(next(k), (hidden, hidden), jnp.float32)},
                "lstm_cell": _lstm_params(next(k), e + hidden, hidden),
                "bahdanau_attention": {
                    "query_layer": {"kernel": _glorot(next(k), (hidden, hidden), jnp.float32)},
                    "attention_v": _glorot_vector(next(k), (hidden,), jnp.float32),
                    "attention_g": jnp.full((), math.sqrt(1.0 / hidden), jnp.float32),
                    "attention_b": jnp.zeros((hidden,), jnp.float32),
                },
                "attention_layer": {"kernel": _glorot(next(k), (2 * hidden, hidden), jnp.float32)},
                "output_projection": {
                    "kernel": _glorot(next(k), (hidden, cfg.tgt_vocab), jnp.float32),
                    "bias": jnp.zeros((cfg.tgt_vocab,), jnp.float32),
                },
            },
        }

    def masked_lstm(p: dict, xs, ms, units: int, reverse: bool):
        def step(state, inputs):
            x, m = inputs
            h, new = _lstm(p["kernel"], p["bias"], x, state)
            return _keep_where(m, new, state), jnp.where(m[:, None], h, 0.0)

        zero = jnp.zeros((xs.shape[1], units), xs.dtype)
        return jax.lax.scan(step, (zero, zero), (xs, ms), reverse=reverse)

    def forward(params: dict, src, src_mask, tgt_in) -> tuple[jax.Array, jax.Array]:
        enc, dec = params["encoder"], params["decoder"]
        x = jnp.take(enc["embedding"]["embeddings"], src, axis=0)
        xs, ms = _time_major(x), _time_major(src_mask)
        rnn = enc["bidirectional_rnn"]
        fw_state, fw_out = masked_lstm(rnn["fw"]["lstm_cell"], xs, ms, hidden // 2, False)
        bw_state, bw_out = masked_lstm(rnn["bw"]["lstm_cell"], xs, ms, hidden // 2, True)
        values = _time_major(jnp.concatenate([fw_out, bw_out], -1))
        state = _concat_states(fw_state, bw_state)

        ys = _time_major(jnp.take(dec["embedding"]["embeddings"], tgt_in, axis=0))
        keys = values @ dec["memory_layer"]["kernel"]
        cell, att = dec["lstm_cell"], dec["bahdanau_attention"]

        def step(carry, y):
            state, attention_vector = carry
            x = jnp.concatenate([y, attention_vector], -1)
            h, state = _lstm(cell["kernel"], cell["bias"], x, state)
            context, weights = _bahdanau(
                h @ att["query_layer"]["kernel"],
                att["attention_v"],
                att["attention_g"],
                att["attention_b"],
                keys,
                values,
                src_mask,
            )
            attention_vector = jnp.tanh(
                jnp.concatenate([h, context], -1) @ dec["attention_layer"]["kernel"]
            )
            return (state, attention_vector), (attention_vector, weights)

        carry = (state, jnp.zeros((values.shape[0], hidden), values.dtype))
        _, (outputs, weights) = jax.lax.scan(step, carry, ys)
        out = dec["output_projection"]
        logits = _time_major(outputs) @ out["kernel"] + out["bias"]
        return logits, _time_major(weights)

    def apply(params: dict, src, src_mask, tgt_in) -> jax.Array:
        return forward(params, src, src_mask, tgt_in)[0]

    return Impl("pure_jax", "pure JAX", init, apply, identity, identity)


def jaxscope(cfg: Any) -> Impl:
    """The example's model itself: ``examples.seq2seq.models.build(cfg)``'s
    ``train`` transform (teacher forcing), its logits."""
    from examples.seq2seq import models

    train = models.build(cfg).train

    def apply(params: dict, src, src_mask, tgt_in) -> jax.Array:
        return train.apply(params, src, src_mask, tgt_in)[0]

    return Impl("jaxscope", "jaxscope", train.init, apply, identity, identity)


def flax_linen(cfg: Any) -> Impl:
    """``flax.linen`` modules: ``nn.Embed``, ``nn.Bidirectional`` of
    ``nn.RNN(nn.LSTMCell)`` with ``seq_lengths``, a decoder step module run
    with ``nn.scan``, ``nn.Dense``."""
    import flax.linen as nn

    hidden = cfg.hidden

    class BahdanauAttention(nn.Module):
        @nn.compact
        def __call__(self, query, keys, values, mask):
            units = keys.shape[-1]
            processed = nn.Dense(units, use_bias=False, kernel_init=_glorot, name="query_layer")(
                query
            )
            v = self.param("attention_v", _glorot_vector, (units,), jnp.float32)
            g = self.param("attention_g", nn.initializers.constant(math.sqrt(1.0 / units)), ())
            b = self.param("attention_b", nn.initializers.zeros, (units,), jnp.float32)
            return _bahdanau(processed, v, g, b, keys, values, mask)

    class DecoderStep(nn.Module):
        @nn.compact
        def __call__(self, carry, y, keys, values, mask):
            state, attention_vector = carry
            state, h = nn.LSTMCell(hidden, name="lstm_cell")(
                state, jnp.concatenate([y, attention_vector], -1)
            )
            context, weights = BahdanauAttention(name="bahdanau_attention")(h, keys, values, mask)
            attention_vector = nn.Dense(
                hidden, use_bias=False, kernel_init=_glorot, name="attention_layer"
            )(jnp.concatenate([h, context], -1))
            attention_vector = jnp.tanh(attention_vector)
            return (state, attention_vector), (attention_vector, weights)

    class Seq2Seq(nn.Module):
        @nn.compact
        def __call__(self, src, src_mask, tgt_in):
            x = nn.Embed(
                cfg.src_vocab, cfg.embed_dim, embedding_init=_glorot, name="encoder_embedding"
            )(src)
            encoder = nn.Bidirectional(
                nn.RNN(nn.LSTMCell(hidden // 2, name="encoder_fw")),
                nn.RNN(nn.LSTMCell(hidden // 2, name="encoder_bw")),
            )
            (fw_state, bw_state), values = encoder(
                x, seq_lengths=jnp.sum(src_mask, -1), return_carry=True
            )
            state = _concat_states(fw_state, bw_state)
            y = nn.Embed(
                cfg.tgt_vocab, cfg.embed_dim, embedding_init=_glorot, name="decoder_embedding"
            )(tgt_in)
            keys = nn.Dense(hidden, use_bias=False, kernel_init=_glorot, name="memory_layer")(
                values
            )
            decoder = nn.scan(
                DecoderStep,
                variable_broadcast="params",
                split_rngs={"params": False},
                in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
            )(name="decoder")
            carry = (state, jnp.zeros((values.shape[0], hidden), values.dtype))
            _, (outputs, _) = decoder(carry, _time_major(y), keys, values, src_mask)
            return nn.Dense(cfg.tgt_vocab, kernel_init=_glorot, name="output_projection")(
                _time_major(outputs)
            )

    module = Seq2Seq()
    return Impl(
        "flax_linen",
        "flax.linen",
        module.init,
        module.apply,
        lambda variables: _from_linen(variables["params"]),
        lambda params: {"params": _to_linen(params)},
    )


_FLAX_GATES = ("i", "g", "f", "o")  # TF1's i, j, f, o, one Dense each


def _linen_cell_to_common(cell: dict) -> dict:
    """An ``nn.LSTMCell``'s params (``i{gate}`` input kernels, ``h{gate}``
    hidden kernels and biases) as TF1's kernel and bias."""
    kernel = jnp.concatenate(
        [
            jnp.concatenate([cell[f"i{g}"]["kernel"] for g in _FLAX_GATES], 1),
            jnp.concatenate([cell[f"h{g}"]["kernel"] for g in _FLAX_GATES], 1),
        ],
        0,
    )
    biases = [cell[f"h{g}"]["bias"] for g in _FLAX_GATES]
    biases[2] = biases[2] - FORGET_BIAS
    return {"kernel": kernel, "bias": jnp.concatenate(biases)}


def _common_cell_to_linen(p: dict) -> dict:
    units = p["bias"].shape[0] // 4
    fan_in = p["kernel"].shape[0] - units
    cell = {}
    for n, g in enumerate(_FLAX_GATES):
        columns = slice(n * units, (n + 1) * units)
        bias = p["bias"][columns] + (FORGET_BIAS if g == "f" else 0.0)
        cell[f"i{g}"] = {"kernel": p["kernel"][:fan_in, columns]}
        cell[f"h{g}"] = {"kernel": p["kernel"][fan_in:, columns], "bias": bias}
    return cell


def _from_linen(params: dict) -> dict:
    step = params["decoder"]
    att = step["bahdanau_attention"]
    return {
        "encoder": {
            "embedding": {"embeddings": params["encoder_embedding"]["embedding"]},
            "bidirectional_rnn": {
                "fw": {"lstm_cell": _linen_cell_to_common(params["encoder_fw"])},
                "bw": {"lstm_cell": _linen_cell_to_common(params["encoder_bw"])},
            },
        },
        "decoder": {
            "embedding": {"embeddings": params["decoder_embedding"]["embedding"]},
            "memory_layer": params["memory_layer"],
            "lstm_cell": _linen_cell_to_common(step["lstm_cell"]),
            "bahdanau_attention": {
                "query_layer": att["query_layer"],
                "attention_v": att["attention_v"],
                "attention_g": att["attention_g"],
                "attention_b": att["attention_b"],
            },
            "attention_layer": step["attention_layer"],
            "output_projection": params["output_projection"],
        },
    }


def _to_linen(params: dict) -> dict:
    enc, dec = params["encoder"], params["decoder"]
    rnn = enc["bidirectional_rnn"]
    att = dec["bahdanau_attention"]
    return {
        "encoder_embedding": {"embedding": enc["embedding"]["embeddings"]},
        "encoder_fw": _common_cell_to_linen(rnn["fw"]["lstm_cell"]),
        "encoder_bw": _common_cell_to_linen(rnn["bw"]["lstm_cell"]),
        "decoder_embedding": {"embedding": dec["embedding"]["embeddings"]},
        "memory_layer": dec["memory_layer"],
        "decoder": {
            "lstm_cell": _common_cell_to_linen(dec["lstm_cell"]),
            "bahdanau_attention": dict(att),
            "attention_layer": dec["attention_layer"],
        },
        "output_projection": dec["output_projection"],
    }


def flax_core(cfg: Any) -> Impl:
    """Functions against ``flax.core``'s scope API (``scope.push``,
    ``scope.param``), ``flax.core.lift.scan`` over time, TF1's names and
    LSTM layout."""
    from flax.core import lift

    e, hidden = cfg.embed_dim, cfg.hidden

    def lstm_cell(scope: Any, x, state):
        units = state[1].shape[-1]
        kernel = scope.param("kernel", _glorot, (x.shape[-1] + units, 4 * units), jnp.float32)
        bias = scope.param("bias", _zeros, (4 * units,), jnp.float32)
        return _lstm(kernel, bias, x, state)

    def dense(scope: Any, x, units: int, use_bias: bool = True):
        y = x @ scope.param("kernel", _glorot, (x.shape[-1], units), jnp.float32)
        if use_bias:
            y = y + scope.param("bias", _zeros, (units,), jnp.float32)
        return y

    def embedding(scope: Any, ids, vocab: int):
        return jnp.take(scope.param("embeddings", _glorot, (vocab, e), jnp.float32), ids, axis=0)

    def masked_lstm(scope: Any, xs, ms, units: int, reverse: bool):
        def step(scope, state, inputs):
            x, m = inputs
            h, new = lstm_cell(scope.push("lstm_cell"), x, state)
            return _keep_where(m, new, state), jnp.where(m[:, None], h, 0.0)

        zero = jnp.zeros((xs.shape[1], units), xs.dtype)
        scan = lift.scan(
            step, variable_broadcast="params", split_rngs={"params": False}, reverse=reverse
        )
        return scan(scope, (zero, zero), (xs, ms))

    def attention(scope: Any, query, keys, values, mask):
        units = keys.shape[-1]
        processed = dense(scope.push("query_layer"), query, units, use_bias=False)
        v = scope.param("attention_v", _glorot_vector, (units,), jnp.float32)
        g = scope.param("attention_g", lambda *_: jnp.full((), math.sqrt(1.0 / units), jnp.float32))
        b = scope.param("attention_b", _zeros, (units,), jnp.float32)
        return _bahdanau(processed, v, g, b, keys, values, mask)

    def model(scope: Any, src, src_mask, tgt_in):
        enc, dec = scope.push("encoder"), scope.push("decoder")
        x = embedding(enc.push("embedding"), src, cfg.src_vocab)
        xs, ms = _time_major(x), _time_major(src_mask)
        rnn = enc.push("bidirectional_rnn")
        fw_state, fw_out = masked_lstm(rnn.push("fw"), xs, ms, hidden // 2, False)
        bw_state, bw_out = masked_lstm(rnn.push("bw"), xs, ms, hidden // 2, True)
        values = _time_major(jnp.concatenate([fw_out, bw_out], -1))
        state = _concat_states(fw_state, bw_state)

        ys = _time_major(embedding(dec.push("embedding"), tgt_in, cfg.tgt_vocab))
        keys = dense(dec.push("memory_layer"), values, hidden, use_bias=False)

        def step(scope, carry, y):
            state, attention_vector = carry
            h, state = lstm_cell(
                scope.push("lstm_cell"), jnp.concatenate([y, attention_vector], -1), state
            )
            context, weights = attention(
                scope.push("bahdanau_attention"), h, keys, values, src_mask
            )
            attention_vector = jnp.tanh(
                dense(
                    scope.push("attention_layer"),
                    jnp.concatenate([h, context], -1),
                    hidden,
                    use_bias=False,
                )
            )
            return (state, attention_vector), (attention_vector, weights)

        carry = (state, jnp.zeros((values.shape[0], hidden), values.dtype))
        scan = lift.scan(step, variable_broadcast="params", split_rngs={"params": False})
        _, (outputs, _) = scan(dec, carry, ys)
        return dense(dec.push("output_projection"), _time_major(outputs), cfg.tgt_vocab)

    return flax_core_impl(model)


def haiku(cfg: Any) -> Impl:
    """Haiku modules: ``hk.Embed``, ``hk.LSTM`` run with ``hk.scan``, an
    attention module of ``hk.get_parameter`` and ``hk.Linear`` (needs
    dm-haiku, the optional ``bench`` extra)."""
    import haiku as hk

    hidden = cfg.hidden
    w_init = hk.initializers.VarianceScaling(1.0, "fan_avg", "uniform")

    class BahdanauAttention(hk.Module):
        def __call__(self, query, keys, values, mask):
            units = keys.shape[-1]
            processed = hk.Linear(units, with_bias=False, w_init=w_init, name="query_layer")(query)
            v = hk.get_parameter("attention_v", (units,), init=w_init)  # a vector: fan = length
            g = hk.get_parameter(
                "attention_g", (), init=hk.initializers.Constant(math.sqrt(1.0 / units))
            )
            b = hk.get_parameter("attention_b", (units,), init=jnp.zeros)
            return _bahdanau(processed, v, g, b, keys, values, mask)

    def masked_lstm(xs, ms, units: int, reverse: bool):
        lstm = hk.LSTM(units, name="lstm_cell")

        def step(state, inputs):
            x, m = inputs
            h, new = lstm(x, state)
            return _keep_where(m, new, state), jnp.where(m[:, None], h, 0.0)

        return hk.scan(step, lstm.initial_state(xs.shape[1]), (xs, ms), reverse=reverse)

    def model(src, src_mask, tgt_in):
        with hk.name_scope("encoder"):
            x = hk.Embed(cfg.src_vocab, cfg.embed_dim, w_init=w_init, name="embedding")(src)
            xs, ms = _time_major(x), _time_major(src_mask)
            with hk.name_scope("bidirectional_rnn"):
                with hk.name_scope("fw"):
                    fw_state, fw_out = masked_lstm(xs, ms, hidden // 2, reverse=False)
                with hk.name_scope("bw"):
                    bw_state, bw_out = masked_lstm(xs, ms, hidden // 2, reverse=True)
            values = _time_major(jnp.concatenate([fw_out, bw_out], -1))
            state = _concat_states(fw_state, bw_state)
        with hk.name_scope("decoder"):
            ys = _time_major(
                hk.Embed(cfg.tgt_vocab, cfg.embed_dim, w_init=w_init, name="embedding")(tgt_in)
            )
            keys = hk.Linear(hidden, with_bias=False, w_init=w_init, name="memory_layer")(values)
            lstm = hk.LSTM(hidden, name="lstm_cell")
            attention = BahdanauAttention(name="bahdanau_attention")
            attention_layer = hk.Linear(
                hidden, with_bias=False, w_init=w_init, name="attention_layer"
            )

            def step(carry, y):
                state, attention_vector = carry
                h, state = lstm(jnp.concatenate([y, attention_vector], -1), state)
                context, weights = attention(h, keys, values, src_mask)
                attention_vector = jnp.tanh(attention_layer(jnp.concatenate([h, context], -1)))
                return (state, attention_vector), (attention_vector, weights)

            carry = (state, jnp.zeros((values.shape[0], hidden), values.dtype))
            _, (outputs, _) = hk.scan(step, carry, ys)
            return hk.Linear(cfg.tgt_vocab, w_init=w_init, name="output_projection")(
                _time_major(outputs)
            )

    f = hk.without_apply_rng(hk.transform(model))
    return Impl("haiku", "Haiku", f.init, f.apply, _from_haiku, _to_haiku)


_HAIKU_LEAF = {"kernel": "w", "bias": "b"}  # hk.Linear's names


def _to_haiku(params: dict, prefix: str = "", out: dict | None = None) -> dict:
    """The common (TF1-named) tree as Haiku's ``{module: {name: value}}``:
    ``hk.Linear`` says ``w`` and ``b``, and ``hk.LSTM`` keeps them in its
    ``linear`` submodule."""
    out = {} if out is None else out
    for key, value in params.items():
        if isinstance(value, dict):
            _to_haiku(value, f"{prefix}{key}/", out)
            continue
        module = prefix[:-1]
        if key in _HAIKU_LEAF and module.endswith("lstm_cell"):
            module += "/linear"
        out.setdefault(module, {})[_HAIKU_LEAF.get(key, key)] = value
    return out


def _from_haiku(params: Any) -> dict:
    common: dict = {}
    names = {v: k for k, v in _HAIKU_LEAF.items()}
    for module, leaves in params.items():
        node = common
        for scope in module.removesuffix("/linear").split("/"):
            node = node.setdefault(scope, {})
        for name, value in leaves.items():
            node[names.get(name, name)] = value
    return common


def demo_config() -> tuple[Any, int, int]:
    """The model config, batch size and source length of the demo,
    ``python -m examples.seq2seq.train --task dates --model rnn`` (its
    ``DEFAULTS``, and the dates task's vocabularies and lengths)."""
    from examples.seq2seq import data as data_lib
    from examples.seq2seq import train

    args = train.build_parser().parse_args(["--task", "dates", "--model", "rnn", "--workdir", "-"])
    run = train.resolve_config(args)
    return run.model, run.batch_size, data_lib.get_task(run.task).max_src_len


def _padded_ids(rng: np.random.Generator, batch: int, length: int, vocab: int) -> tuple:
    """Random ids in ``[3, vocab)`` (no PAD, BOS, EOS) of random lengths in
    ``[1, length]``, padded at the end: ``(ids, mask)``."""
    lengths = rng.integers(1, length + 1, size=batch)
    mask = np.arange(length)[None] < lengths[:, None]
    ids = np.where(mask, rng.integers(EOS_ID + 1, vocab, size=(batch, length)), PAD_ID)
    return ids.astype(np.int32), mask


def build(quick: bool = False) -> ModelSpec:
    """Model A written five ways (Haiku skipped, with the reason, when
    dm-haiku is not installed), at the demo's size.

    Args:
        quick: tiny sizes (embed and hidden 8, batch 4, 7 source and 5
            target steps) for smoke tests.
    """
    from examples.seq2seq.train import masked_cross_entropy

    cfg, batch, src_len = demo_config()
    if quick:
        cfg = dataclasses.replace(
            cfg,
            src_vocab=QUICK["src_vocab"],
            tgt_vocab=QUICK["tgt_vocab"],
            embed_dim=QUICK["embed_dim"],
            hidden=QUICK["hidden"],
            max_tgt_len=QUICK["tgt_len"],
        )
        batch, src_len = QUICK["batch"], QUICK["src_len"]
    tgt_len = cfg.max_tgt_len  # the decoder's steps, EOS included
    impls, skipped = build_impls((pure_jax, jaxscope, flax_linen, flax_core, haiku), cfg)
    data = np.random.default_rng(1)  # numpy: no XLA program to compile for the data
    src, src_mask = _padded_ids(data, batch, src_len - 1, cfg.src_vocab)
    src, src_mask = _append_eos(src, src_mask)
    # Teacher forcing: tgt_in is BOS + the target, tgt_out the target + EOS.
    target, target_mask = _padded_ids(data, batch, tgt_len - 1, cfg.tgt_vocab)
    tgt_out, tgt_mask = _append_eos(target, target_mask)
    tgt_in = np.concatenate([np.full((batch, 1), BOS_ID, np.int32), target], 1)
    inputs = tuple(jnp.asarray(a) for a in (src, src_mask, tgt_in))
    # One get_variable call per variable per apply (js.scan bodies obtain
    # theirs once, not once per step): the size of the params tree.
    n_variables = len(jax.tree.leaves(jax.eval_shape(impls[0].init, jax.random.key(0), *inputs)))
    return ModelSpec(
        title=(
            f"seq2seq model A (attention RNN), embed {cfg.embed_dim}, hidden {cfg.hidden}, "
            f"batch {batch}, {src_len} source and {tgt_len} target steps "
            f"({n_variables} variables)"
        ),
        impls=impls,
        skipped=skipped,
        inputs=inputs,
        target={"tgt_out": jnp.asarray(tgt_out), "tgt_mask": jnp.asarray(tgt_mask)},
        loss=masked_cross_entropy,
        n_variables=n_variables,
        notes=(
            "Eager `init` and eager `apply` of this model measure JAX's eager "
            "`lax.scan`, not scoping: every version but pure JAX's init runs the "
            "model's three scans, and an un-jitted scan traces and compiles its "
            "body on every call. Pure JAX's init draws the parameters without "
            "running the model, hence its small time.",
        ),
    )


def _append_eos(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` with EOS after each sequence (one step longer), and its mask."""
    batch = ids.shape[0]
    ids = np.concatenate([ids, np.full((batch, 1), PAD_ID, np.int32)], 1)
    ids[np.arange(batch), mask.sum(1)] = EOS_ID
    return ids, ids != PAD_ID
