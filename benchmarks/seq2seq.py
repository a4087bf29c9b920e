"""seq2seq model A, the demo's attention RNN: compiled train step and trace.

    python -m benchmarks.seq2seq              # the demo's size, about a minute on 2 cores
    python -m benchmarks.seq2seq --quick      # tiny sizes: a smoke test

Model A of ``examples/seq2seq`` at its demo's size (``python -m
examples.seq2seq.train --task dates --model rnn``): character embeddings, a
bidirectional LSTM encoder that skips padding, an LSTM decoder with
weight-normalized Bahdanau attention and input feeding, run over time with a
scan, and an output projection; the teacher-forced training forward and the
masked token cross-entropy the example trains with.

The jaxscope version *is* the example's model, built from the demo's config.
The baseline is the same function written by hand in pure JAX with TF1's
names and LSTM layout (one ``[in + units, 4 * units]`` kernel, gates ``i, j,
f, o``, forget bias 1.0) and ``jax.lax.scan``, op for op as the example
computes it, so that jaxscope's compiled train step can be its XLA program.

Figures: the compiled train step (forward, backward, optax Adam), whether
its optimized HLO is pure JAX's, and the trace time under
``jax.make_jaxpr(apply)`` and ``jax.jit(apply).lower(...)``; the outputs on
the same params are checked equal. Targets: ``benchmarks/targets.toml``,
``[seq2seq]``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from benchmarks.harness import Impl

REPEATS = 10
# The quick (smoke-test) sizes; the full ones are the demo's (demo_config).
QUICK = dict(src_vocab=11, tgt_vocab=13, embed_dim=8, hidden=8, batch=4, src_len=7, tgt_len=5)
FIGURES = ("train_step", "make_jaxpr", "lower")

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # as in examples/seq2seq
FORGET_BIAS = 1.0  # TF1's LSTMCell default, as js.nn.lstm_cell

_glorot = jax.nn.initializers.glorot_uniform()
# TF1's Glorot-uniform of a vector (fan = its length), as js.initializers'.
_glorot_vector = jax.nn.initializers.variance_scaling(
    1.0, "fan_avg", "uniform", in_axis=(), out_axis=()
)


# The math of the pure-JAX version, op for op as the example computes it.


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

    return Impl("pure JAX", init, apply)


def jaxscope(cfg: Any) -> Impl:
    """The example's model itself: ``examples.seq2seq.models.build(cfg)``'s
    ``train`` transform (teacher forcing), its logits."""
    from examples.seq2seq import models

    train = models.build(cfg).train

    def apply(params: dict, src, src_mask, tgt_in) -> jax.Array:
        return train.apply(params, src, src_mask, tgt_in)[0]

    return Impl("jaxscope", train.init, apply)


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


def _append_eos(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` with EOS after each sequence (one step longer), and its mask."""
    batch = ids.shape[0]
    ids = np.concatenate([ids, np.full((batch, 1), PAD_ID, np.int32)], 1)
    ids[np.arange(batch), mask.sum(1)] = EOS_ID
    return ids, ids != PAD_ID


def inputs(cfg: Any, batch: int, src_len: int) -> tuple[tuple, dict]:
    """Random padded batches of the task's shape: ``(src, src_mask,
    tgt_in)`` and the loss's target (teacher forcing: ``tgt_in`` is BOS +
    the target, ``tgt_out`` the target + EOS)."""
    data = np.random.default_rng(1)  # numpy: no XLA program to compile for the data
    src, src_mask = _append_eos(*_padded_ids(data, batch, src_len - 1, cfg.src_vocab))
    target, target_mask = _padded_ids(data, batch, cfg.max_tgt_len - 1, cfg.tgt_vocab)
    tgt_out, tgt_mask = _append_eos(target, target_mask)
    tgt_in = np.concatenate([np.full((batch, 1), BOS_ID, np.int32), target], 1)
    args = tuple(jnp.asarray(a) for a in (src, src_mask, tgt_in))
    return args, {"tgt_out": jnp.asarray(tgt_out), "tgt_mask": jnp.asarray(tgt_mask)}


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what ``--json`` writes."""
    from examples.seq2seq.train import masked_cross_entropy

    argv = sys.argv[1:] if argv is None else list(argv)
    args = harness.parser("seq2seq", __doc__, REPEATS).parse_args(argv)
    repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    cfg, batch, src_len = demo_config()
    if args.quick:
        sizes = {k: QUICK[k] for k in ("src_vocab", "tgt_vocab", "embed_dim", "hidden")}
        cfg = dataclasses.replace(cfg, max_tgt_len=QUICK["tgt_len"], **sizes)
        batch, src_len = QUICK["batch"], QUICK["src_len"]
    impls = {"pure_jax": pure_jax(cfg), "jaxscope": jaxscope(cfg)}
    args_, target = inputs(cfg, batch, src_len)
    shapes = jax.eval_shape(impls["pure_jax"].init, jax.random.key(0), *args_)
    n_variables = len(jax.tree.leaves(shapes))
    n_params = sum(leaf.size for leaf in jax.tree.leaves(shapes))
    result = harness.compare(
        impls,
        args_,
        target,
        masked_cross_entropy,
        FIGURES,
        repeats,
        warmup=0 if args.quick else 1,
        min_sample_s=0.0 if args.quick else 0.05,
        compiler_options=harness.QUICK_COMPILE if args.quick else None,
    )
    goal = harness.targets("seq2seq")["train_step_over_pure_jax"]
    steps = result["samples"]["train_step"]
    step = steps["jaxscope"].median / steps["pure_jax"].median
    same = result["same_program"]["jaxscope"]
    verdict = harness.verdict(step, goal) if same else "**missed**"
    body = "\n".join(
        [
            f"Embed {cfg.embed_dim}, hidden {cfg.hidden}, batch {batch}, {src_len} source and "
            f"{cfg.max_tgt_len} target steps: {n_variables} variables, {n_params:,} parameters. "
            f"{repeats} samples per figure, interleaved.",
            "",
            f"- compiled train step over pure JAX: {step:.2f}x, "
            + ("the same XLA program" if same else "**not the same XLA program**")
            + f"; target at most {goal}x and the same program: {verdict}",
            "",
            harness.compare_report(result, {n: i.label for n, i in impls.items()}, n_variables),
        ]
    )
    raw = {
        "train_step_over_pure_jax": step,
        **harness.compare_figures(result),
        "n_variables": n_variables,
        "n_params": n_params,
    }
    return harness.finish("seq2seq", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
