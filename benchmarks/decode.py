"""Decoding speed of the seq2seq Transformer (model B): tokens per second.

    python -m benchmarks.decode --lengths 16 64 256 --repeats 7

For each target length L, the example's greedy and beam-search decoders
(``examples/seq2seq/models.py``) decode exactly L tokens (``min_len=L``, so
no sequence ends early) for a batch of random sources, with:

- ``jaxscope``: the example's decoders, one position per step through the
  key/value cache;
- ``uncached``: ``models.build(cfg, cached=False)``, the decoder over the
  whole prefix at every step (lengths up to ``--uncached-up-to``);
- ``pure JAX``: a hand-written cached decoder on the same params tree
  (reading the stacked params directly, layers as one ``lax.scan``, their
  caches its per-layer inputs and outputs, as ``js.layer_stack`` runs
  them), with its own greedy and beam loops: the baseline;
- ``pure JAX, per-layer caches``: the same, its layers a Python loop and
  each layer's cache an array of its own in the decoding loop's carry.

All three are checked to give the same tokens first. Each call is jitted and
compiled before timing; samples are interleaved round-robin over every
decoder and length, and the medians reported: wall-clock, and the process's
CPU time (less sensitive to other load on a shared machine). The per-token
cost is the time of one decode over L; a cache keeps it nearly flat in L
(attention over a longer cache is the only growth), re-running the prefix
makes it grow linearly. Prints a markdown section for ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import machine_info
from examples.seq2seq import models
from examples.seq2seq.models import BOS_ID, EOS_ID, PAD_ID

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_LAYER = "pure JAX, per-layer caches"
IMPLS = ("jaxscope", "uncached", "pure JAX", PER_LAYER)
NEG_INF = -1e9
EPSILON = 1e-6  # the example's LayerNorm epsilon


# --- the hand-written decoder ------------------------------------------------------


def _layer_norm(x: jax.Array, p: dict) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + EPSILON) * p["gamma"] + p["beta"]


def _dense(x: jax.Array, p: dict) -> jax.Array:
    return x @ p["kernel"] + p["bias"]


def _heads(x: jax.Array, heads: int) -> jax.Array:
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def _attend(p: dict, q_in: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, heads: int):
    """Multi-head attention of ``q_in`` [B, T, D] over heads-major keys and
    values ``k``, ``v`` [B, H, S, d] under ``mask`` (broadcast to [B, H, T, S])."""
    q = _heads(_dense(q_in, p["query"]), heads)
    scores = jnp.einsum("bthd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
    weights = jax.nn.softmax(jnp.where(mask, scores, jnp.finfo(scores.dtype).min), axis=-1)
    out = jnp.einsum("bhts,bhsd->bthd", weights, v)
    return _dense(out.reshape(*out.shape[:-2], -1), p["output"])


def _keys_values(p: dict, x: jax.Array, heads: int) -> tuple[jax.Array, jax.Array]:
    """The heads-major keys and values of ``x`` [B, S, D]: [B, H, S, d]."""
    return tuple(jnp.swapaxes(_heads(_dense(x, p[n]), heads), 1, 2) for n in ("key", "value"))


def _self_attention(p: dict, x: jax.Array, mask: jax.Array, heads: int) -> jax.Array:
    return _attend(p, x, *_keys_values(p, x, heads), mask, heads)


def _feed_forward(p: dict, x: jax.Array) -> jax.Array:
    y = _layer_norm(x, p["LayerNorm"])
    return x + _dense(jax.nn.relu(_dense(y, p["dense"])), p["dense_1"])


def _positions(positions: jax.Array, dim: int) -> jax.Array:
    return models._positional_encoding(positions, dim)  # no variables: shared with the model


class HandWritten:
    """Model B's inference in pure JAX, with a key/value cache.

    The layers run as one (unrolled) ``lax.scan`` over the stacked params,
    their caches stacked by layer as its per-layer inputs and outputs (what
    the example's layer stack does); with ``per_layer_caches``, as a Python loop over the layers reading
    the stacked params by index, each layer's cache its own array in the
    decoding loop's carry.
    """

    def __init__(self, cfg: models.ModelConfig, per_layer_caches: bool = False):
        self.cfg = cfg
        self.per_layer_caches = per_layer_caches

    def encode(self, params: dict, src: jax.Array, src_mask: jax.Array) -> jax.Array:
        p, heads, d = params["encoder"], self.cfg.num_heads, self.cfg.embed_dim
        x = p["embedding"]["embeddings"][src] * math.sqrt(d)
        x = x + _positions(jnp.arange(src.shape[1]), d)
        mask = src_mask[:, None, None, :]

        def layer(x, lp):
            a = lp["self_attention"]
            y = _layer_norm(x, a["LayerNorm"])
            x = x + _self_attention(a["multihead_attention"], y, mask, heads)
            return _feed_forward(lp["ffn"], x), None

        x, _ = jax.lax.scan(layer, x, p["layers"])
        return _layer_norm(x, p["LayerNorm"])

    def start(self, params: dict, memory: jax.Array):
        """The memory's keys and values per layer, and empty self-attention
        caches, heads-major: [layers, B, heads, positions, head size]."""
        cfg, layers = self.cfg, params["decoder"]["layers"]
        cross = layers["cross_attention"]["multihead_attention"]
        memory_kv = jax.vmap(lambda p: _keys_values(p, memory, cfg.num_heads))(cross)
        shape = (cfg.num_layers, memory.shape[0], cfg.num_heads, cfg.max_tgt_len)
        empty = jnp.zeros((*shape, cfg.embed_dim // cfg.num_heads), memory.dtype)
        if self.per_layer_caches:
            return memory_kv, tuple((empty[i], empty[i]) for i in range(cfg.num_layers))
        return memory_kv, (empty, empty)

    def reorder(self, cache: Any, rows: jax.Array) -> Any:
        """The caches of batch rows ``rows`` (beam search)."""
        if self.per_layer_caches:
            return jax.tree.map(lambda c: c[rows], cache)
        return jax.tree.map(lambda c: c[:, rows], cache)

    def step(self, params, memory_kv, memory_mask, cache, token, t):
        """Logits [B, V] of position ``t`` given its input token [B]."""
        cfg, p = self.cfg, params["decoder"]
        table = p["embedding"]["embeddings"]
        encoding = _positions(jnp.reshape(t, [1]), cfg.embed_dim)
        x = table[token][:, None] * math.sqrt(cfg.embed_dim) + encoding
        visible = jnp.arange(cfg.max_tgt_len) <= t

        def layer(x, lp, mk, mv, ck, cv):
            a = lp["self_attention"]
            y = _layer_norm(x, a["LayerNorm"])
            att = a["multihead_attention"]
            k, v = _keys_values(att, y, cfg.num_heads)
            ck = jax.lax.dynamic_update_slice_in_dim(ck, k, t, axis=2)
            cv = jax.lax.dynamic_update_slice_in_dim(cv, v, t, axis=2)
            x = x + _attend(att, y, ck, cv, visible, cfg.num_heads)
            c = lp["cross_attention"]
            y = _layer_norm(x, c["LayerNorm"])
            x = x + _attend(c["multihead_attention"], y, mk, mv, memory_mask, cfg.num_heads)
            return _feed_forward(lp["ffn"], x), (ck, cv)

        mk, mv = memory_kv
        if self.per_layer_caches:
            new = []
            for i, (ck, cv) in enumerate(cache):
                lp = jax.tree.map(lambda a, i=i: a[i], p["layers"])
                x, kv = layer(x, lp, mk[i], mv[i], ck, cv)
                new.append(kv)
            cache = tuple(new)
        else:
            x, cache = jax.lax.scan(
                lambda x, xs: layer(x, *xs),
                x,
                (p["layers"], mk, mv, *cache),
                unroll=cfg.num_layers,  # as the example's decoder: fewer copies of the caches
            )
        logits = _layer_norm(x[:, 0], p["LayerNorm"]) @ table.T
        return logits, cache

    def log_probs(self, logits: jax.Array, t: jax.Array, min_len: int) -> jax.Array:
        vocab = jnp.arange(logits.shape[-1])
        banned = (vocab == PAD_ID) | (vocab == BOS_ID) | ((vocab == EOS_ID) & (t < min_len))
        return jax.nn.log_softmax(jnp.where(banned, NEG_INF, logits))

    def greedy(self, params, src, src_mask, min_len=0):
        batch, max_len = src.shape[0], self.cfg.max_tgt_len
        memory = self.encode(params, src, src_mask)
        memory_kv, cache = self.start(params, memory)
        memory_mask = src_mask[:, None, None, :]

        def cond(loop):
            t, _, _, finished, _ = loop
            return (t < max_len) & ~jnp.all(finished)

        def body(loop):
            t, token, out, finished, cache = loop
            logits, cache = self.step(params, memory_kv, memory_mask, cache, token, t)
            token = jnp.argmax(self.log_probs(logits, t, min_len), -1).astype(jnp.int32)
            token = jnp.where(finished, PAD_ID, token)
            out = out.at[:, t].set(token)
            return t + 1, token, out, finished | (token == EOS_ID), cache

        out = jnp.full((batch, max_len), PAD_ID, jnp.int32)
        start = (0, jnp.full(batch, BOS_ID, jnp.int32), out, jnp.zeros(batch, bool), cache)
        return jax.lax.while_loop(cond, body, start)[2]

    def beam(self, params, src, src_mask, beam_size=4, min_len=0):
        """Beam search without length penalty: the best beam's tokens."""
        batch, max_len, k = src.shape[0], self.cfg.max_tgt_len, beam_size
        memory = jnp.repeat(self.encode(params, src, src_mask), k, axis=0)
        memory_kv, cache = self.start(params, memory)
        memory_mask = jnp.repeat(src_mask, k, axis=0)[:, None, None, :]
        first_row = jnp.arange(batch)[:, None] * k

        def cond(loop):
            t, _, _, finished, _ = loop
            return (t < max_len) & ~jnp.all(finished)

        def body(loop):
            t, out, scores, finished, cache = loop
            token = jnp.where(t == 0, BOS_ID, out[:, :, jnp.maximum(t - 1, 0)]).reshape(-1)
            logits, cache = self.step(params, memory_kv, memory_mask, cache, token, t)
            vocab = logits.shape[-1]
            log_probs = self.log_probs(logits, t, min_len).reshape(batch, k, vocab)
            pad_only = jnp.where(jnp.arange(vocab) == PAD_ID, 0.0, NEG_INF)
            log_probs = jnp.where(finished[..., None], pad_only, log_probs)
            candidates = (scores[..., None] + log_probs).reshape(batch, k * vocab)
            scores, index = jax.lax.top_k(candidates, k)
            origin, token = index // vocab, (index % vocab).astype(jnp.int32)
            out = jnp.take_along_axis(out, origin[..., None], axis=1).at[:, :, t].set(token)
            finished = jnp.take_along_axis(finished, origin, axis=1) | (token == EOS_ID)
            cache = self.reorder(cache, (first_row + origin).reshape(-1))
            return t + 1, out, scores, finished, cache

        out = jnp.full((batch, k, max_len), PAD_ID, jnp.int32)
        scores = jnp.where(jnp.arange(k) == 0, 0.0, NEG_INF) * jnp.ones((batch, 1))
        start = (0, out, scores, jnp.zeros((batch, k), bool), cache)
        return jax.lax.while_loop(cond, body, start)[1][:, 0]


# --- measuring ---------------------------------------------------------------------


@dataclasses.dataclass
class Decoder:
    """One timed call: a decoder of one implementation at one length."""

    search: str  # "greedy" or "beam"
    impl: str  # one of IMPLS
    length: int
    call: Callable[[], Any]
    wall: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)

    def sample(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(self.call())
        self.cpu.append(time.process_time() - cpu)
        self.wall.append(time.perf_counter() - wall)

    def per_token(self, clock: str) -> float:
        return statistics.median(getattr(self, clock)) / self.length


def config(length: int, args: argparse.Namespace) -> models.ModelConfig:
    return models.ModelConfig(
        model="transformer",
        src_vocab=args.vocab,
        tgt_vocab=args.vocab,
        embed_dim=args.width,
        hidden=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        max_tgt_len=length,
    )


def decoders(length: int, args: argparse.Namespace) -> list[Decoder]:
    """Every implementation's greedy and beam decoder at ``length``, compiled
    and checked to agree on the tokens."""
    cfg = config(length, args)
    rng = np.random.default_rng(0)
    src = jnp.asarray(rng.integers(3, args.vocab, (args.batch, args.src_len)), jnp.int32)
    mask = jnp.ones(src.shape, bool)
    cached = models.build(cfg)
    params = cached.train.init(0, src, mask, jnp.full((args.batch, 4), BOS_ID))
    hand, per_layer = HandWritten(cfg), HandWritten(cfg, per_layer_caches=True)
    impls: dict[str, dict[str, Callable]] = {
        "jaxscope": {
            "greedy": functools.partial(cached.greedy.apply, min_len=length),
            "beam": functools.partial(cached.beam.apply, beam_size=args.beam, min_len=length),
        },
        "pure JAX": {
            "greedy": functools.partial(hand.greedy, min_len=length),
            "beam": functools.partial(hand.beam, beam_size=args.beam, min_len=length),
        },
        PER_LAYER: {
            "greedy": functools.partial(per_layer.greedy, min_len=length),
            "beam": functools.partial(per_layer.beam, beam_size=args.beam, min_len=length),
        },
    }
    if length <= args.uncached_up_to:
        uncached = models.build(cfg, cached=False)
        impls["uncached"] = {
            "greedy": functools.partial(uncached.greedy.apply, min_len=length),
            "beam": functools.partial(uncached.beam.apply, beam_size=args.beam, min_len=length),
        }
    out = []
    for search in ("greedy", "beam"):
        tokens = {}
        for impl, fns in impls.items():
            compiled = jax.jit(fns[search]).lower(params, src, mask).compile()
            call = functools.partial(compiled, params, src, mask)
            tokens[impl] = np.asarray(call())
            out.append(Decoder(search, impl, length, call))
        for impl, t in tokens.items():
            if not np.array_equal(t, tokens["jaxscope"]):
                raise SystemExit(f"{impl} {search} decodes other tokens than jaxscope at {length}")
        assert (tokens["jaxscope"] != EOS_ID).all()  # min_len: exactly `length` tokens
    return out


def measure(args: argparse.Namespace) -> list[Decoder]:
    everything = [d for length in args.lengths for d in decoders(length, args)]
    for round_ in range(args.repeats):
        for d in everything if round_ % 2 else everything[::-1]:
            d.sample()
    return everything


def report(results: list[Decoder], args: argparse.Namespace, seconds: float, info: dict) -> str:
    by = {(d.search, d.impl, d.length): d for d in results}
    impls = [i for i in IMPLS if any(d.impl == i for d in results)]
    short, long_ = min(args.lengths), max(args.lengths)
    lines = [
        "## Decoding: seq2seq model B (Transformer) with a key/value cache",
        "",
        f"`python -m benchmarks.decode {shlex.join(sys.argv[1:])}` on {info['date']}, "
        f"commit `{info['git_commit']}`, {seconds:.0f} s. Machine: {info['cpu']}, "
        f"{info['cores']} cores, JAX {info['versions']['jax']} on {info['device']}; load "
        f"average {info['load_average_at_start']} at the start, {list(os.getloadavg())} at "
        "the end (a shared machine).",
        "",
        f"Model: width {args.width}, feed-forward {args.hidden}, {args.layers} encoder and "
        f"{args.layers} decoder layers, {args.heads} heads, vocabulary {args.vocab}; batch "
        f"{args.batch}, source length {args.src_len}, beam size {args.beam}. Every decode "
        "emits exactly L tokens per sequence (`min_len=L`). Medians of "
        f"{args.repeats} interleaved samples per decoder; tokens per second count the "
        "output tokens (batch x L; beam search's best beam only); the per-token cost is "
        "one decode's time over L, wall-clock (process CPU time in brackets).",
        "",
        "| decoder | L | implementation | tokens/s | ms/token | ms/token, CPU time "
        "| over pure JAX |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for search in ("greedy", "beam"):
        for length in args.lengths:
            base = by[(search, "pure JAX", length)]
            for impl in impls:
                d = by.get((search, impl, length))
                if d is None:
                    continue
                wall, cpu = d.per_token("wall"), d.per_token("cpu")
                lines.append(
                    f"| {search} | {length} | {impl} | {args.batch / wall:,.0f} | "
                    f"{1e3 * wall:.3g} | {1e3 * cpu:.3g} | {wall / base.per_token('wall'):.2f}x |"
                )
    lines += ["", "Against the targets (issue 15), wall-clock and process CPU time:", ""]

    def both(a: Decoder, b: Decoder, target: float) -> str:
        wall, cpu = (a.per_token(c) / b.per_token(c) for c in ("wall", "cpu"))
        return (
            f"{wall:.2f}x ({verdict(wall, target)}), CPU time {cpu:.2f}x "
            f"({verdict(cpu, target)}), target at most {target}x"
        )

    for search in ("greedy", "beam"):
        ours = {n: by[(search, "jaxscope", n)] for n in args.lengths}
        lines.append(
            f"- {search}: jaxscope's per-token cost at L = {long_} over L = {short}: "
            f"{both(ours[long_], ours[short], 1.5)}; pure JAX's "
            f"{by[(search, 'pure JAX', long_)].per_token('wall') / by[(search, 'pure JAX', short)].per_token('wall'):.2f}x, "
            f"with per-layer caches "
            f"{by[(search, PER_LAYER, long_)].per_token('wall') / by[(search, PER_LAYER, short)].per_token('wall'):.2f}x."
        )
        for n in args.lengths:
            lines.append(
                f"- {search}, L = {n}: jaxscope over the hand-written decoder "
                f"{both(ours[n], by[(search, 'pure JAX', n)], 1.1)}; over the one with "
                f"per-layer caches {ours[n].per_token('wall') / by[(search, PER_LAYER, n)].per_token('wall'):.2f}x."
            )
        for n in args.lengths:
            slow = by.get((search, "uncached", n))
            if slow is not None:
                ratio = slow.per_token("wall") / ours[n].per_token("wall")
                lines.append(f"- {search}, L = {n}: the uncached decoder is {ratio:.1f}x slower.")
    return "\n".join(lines) + "\n"


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**missed**"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.decode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=7, help="samples per decoder (7)")
    parser.add_argument("--batch", type=int, default=8, help="sequences decoded at once (8)")
    parser.add_argument("--beam", type=int, default=4, help="beam size (4)")
    parser.add_argument("--src-len", type=int, default=20, help="source length (20)")
    parser.add_argument(
        "--uncached-up-to",
        type=int,
        default=64,
        help="time the uncached decoder at lengths up to this (64; it is quadratic)",
    )
    model = parser.add_argument_group("model (the reverse task's model B by default)")
    model.add_argument("--width", type=int, default=64)
    model.add_argument("--hidden", type=int, default=128)
    model.add_argument("--layers", type=int, default=2)
    model.add_argument("--heads", type=int, default=4)
    model.add_argument("--vocab", type=int, default=40)
    return parser


def main(argv: list[str] | None = None) -> str:
    args = build_parser().parse_args(argv)
    info = machine_info(ROOT)
    start = time.perf_counter()
    results = measure(args)
    text = report(results, args, time.perf_counter() - start, info)
    print(text)
    return text


if __name__ == "__main__":
    main()
