"""Decoding speed of the seq2seq Transformer (model B): tokens per second.

    python -m benchmarks.decode             # lengths 16, 64, 256: minutes on 2 cores
    python -m benchmarks.decode --quick     # tiny sizes: a smoke test

For each target length L, the example's greedy and beam-search decoders
(``examples/seq2seq/models.py``) decode exactly L tokens (``min_len=L``, so
no sequence ends early) for a batch of random sources, with:

- ``jaxscope``: the example's decoders, one position per step through the
  key/value cache;
- ``uncached``: ``models.build(cfg, cached=False)``, the decoder over the
  whole prefix at every step (lengths up to ``--uncached-up-to``);
- ``pure JAX``: a hand-written cached decoder on the same params tree,
  with its own greedy and beam loops: the baseline. Its layers are a Python
  loop reading the stacked params by index, each layer's cache an array of
  its own in the decoding loop's carry (updated in place by XLA; caches
  stacked by layer would be copied at every step), and beam search
  reordering only the indices of the beam that holds each position. It
  grows its caches in the example's segments (``models._segment_ends``):
  both decoders run the same algorithm.

All are checked to give the same tokens first. Each call is jitted and
compiled before timing; samples are interleaved round-robin over every
decoder and length, and the medians reported: wall-clock, and the process's
CPU time (less sensitive to other load on a shared machine). The cost per
token is the time of one decode over L: re-running the prefix makes it grow
linearly with L; with a cache, only attending to a longer prefix grows (in
beam search, each beam's query over every beam's row of its example).
Targets: ``benchmarks/targets.toml``, ``[decode]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from examples.seq2seq import models
from examples.seq2seq.models import BOS_ID, EOS_ID, PAD_ID

IMPLS = ("jaxscope", "uncached", "pure JAX")
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


def _attend_beams(p: dict, y: jax.Array, k: jax.Array, v: jax.Array, origin, visible, heads):
    """Self-attention of the beams' new positions ``y`` [N * K, 1, D] over
    caches ``k``, ``v`` [N, K, H, S, d] whose position ``s`` of beam ``b``
    lies in the row of beam ``origin[n, b, s]``: each beam's query against
    every beam's row of its example, then the score of the row that holds
    each position (no copy of the caches). One product per beam: XLA runs
    these faster on CPU than one product of every beam's query at once."""
    n, beams, _, length, size = k.shape
    q = _heads(_dense(y, p["query"]), heads).reshape(n, beams, heads, size)
    rows = jnp.arange(beams)[:, None, None]
    held = [origin[:, b, None, None, :] == rows for b in range(beams)]  # [n, c, 1, S] each

    def every_row(b):  # beam b's query, once for each row of its example: [n, c, H, d]
        return jnp.broadcast_to(q[:, b, None], (n, beams, heads, size))

    scores = jnp.stack(
        [
            jnp.sum(jnp.where(held[b], jnp.einsum("nchd,nchsd->nchs", every_row(b), k), 0.0), 1)
            for b in range(beams)
        ],
        axis=1,
    )  # [n, b, H, S]
    scores = scores / math.sqrt(size)
    weights = jax.nn.softmax(jnp.where(visible, scores, jnp.finfo(scores.dtype).min), axis=-1)
    out = jnp.stack(
        [
            jnp.einsum("nchs,nchsd->nchd", jnp.where(held[b], weights[:, b, None], 0.0), v).sum(1)
            for b in range(beams)
        ],
        axis=1,
    )  # [n, b, H, d]
    return _dense(out.reshape(n * beams, 1, heads * size), p["output"])


def _grow(caches: list, capacity: int) -> list:
    """Self-attention caches [..., heads, positions, size] padded to ``capacity`` positions."""
    pad = lambda x: jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, capacity - x.shape[-2]), (0, 0)])  # noqa: E731
    return jax.tree.map(pad, caches)


def _grow_origin(origin: jax.Array, capacity: int) -> jax.Array:
    """Beam origins [N, K, positions] extended to ``capacity``, each beam's own row."""
    n, beams, length = origin.shape
    own = jnp.broadcast_to(jnp.arange(beams)[:, None], (n, beams, capacity - length))
    return jnp.concatenate([origin, own], axis=-1)


def _segment(body: Callable, loop: tuple, end: int, grow: Callable) -> tuple:
    """The decoding loop ``loop`` = (t, ..., finished, cache) run on to step
    ``end`` (or until every row has finished), its caches grown to ``end``
    positions first."""

    def cond(loop):
        return (loop[0] < end) & ~jnp.all(loop[-2])

    return jax.lax.while_loop(cond, body, (*loop[:-1], grow(loop[-1])))


class HandWritten:
    """Model B's inference in pure JAX, with a key/value cache.

    The decoder's layers run as a Python loop reading the stacked params by
    index, each layer's caches arrays of their own in the decoding loop's
    carry (updated in place by XLA). Beam search keeps its caches where
    they were written, with the beam whose row holds each position
    (``origin``), and reorders only these indices.
    """

    def __init__(self, cfg: models.ModelConfig):
        self.cfg = cfg

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

    def layer_params(self, params: dict) -> list[dict]:
        layers = params["decoder"]["layers"]
        return [jax.tree.map(lambda a, i=i: a[i], layers) for i in range(self.cfg.num_layers)]

    def start(self, params: dict, memory: jax.Array, capacity: int, beams: int = 1):
        """Each layer's keys and values of the memory, and empty
        self-attention caches of ``capacity`` positions, heads-major: [B,
        heads, positions, head size], or [B / beams, beams, ...] and the
        origins [B / beams, beams, positions] for beam search."""
        cfg = self.cfg
        memory_kv = [
            _keys_values(lp["cross_attention"]["multihead_attention"], memory, cfg.num_heads)
            for lp in self.layer_params(params)
        ]
        batch = [memory.shape[0] // beams, beams] if beams > 1 else [memory.shape[0]]
        size = cfg.embed_dim // cfg.num_heads
        empty = jnp.zeros((*batch, cfg.num_heads, capacity, size), memory.dtype)
        caches = [(empty, empty)] * cfg.num_layers
        if beams == 1:
            return memory_kv, caches
        origin = jnp.broadcast_to(jnp.arange(beams)[:, None], (*batch, capacity))
        return memory_kv, (caches, origin)

    def step(self, params, memory_kv, memory_mask, cache, token, t):
        """Logits [B, V] of position ``t`` given its input token [B]."""
        cfg, p = self.cfg, params["decoder"]
        table = p["embedding"]["embeddings"]
        encoding = _positions(jnp.reshape(t, [1]), cfg.embed_dim)
        x = table[token][:, None] * math.sqrt(cfg.embed_dim) + encoding
        beams = isinstance(cache, tuple)
        if beams:
            cache, origin = cache
            written = jnp.broadcast_to(jnp.arange(origin.shape[1])[:, None], (*origin.shape[:2], 1))
            origin = jax.lax.dynamic_update_slice_in_dim(origin, written, t, axis=2)
        visible = jnp.arange(cache[0][0].shape[-2]) <= t
        new = []
        for lp, (mk, mv), (ck, cv) in zip(self.layer_params(params), memory_kv, cache, strict=True):
            a = lp["self_attention"]
            y = _layer_norm(x, a["LayerNorm"])
            att = a["multihead_attention"]
            k, v = _keys_values(att, y, cfg.num_heads)
            ck = jax.lax.dynamic_update_slice_in_dim(ck, k.reshape(ck.shape[:-2] + (1, -1)), t, -2)
            cv = jax.lax.dynamic_update_slice_in_dim(cv, v.reshape(cv.shape[:-2] + (1, -1)), t, -2)
            if beams:
                x = x + _attend_beams(att, y, ck, cv, origin, visible, cfg.num_heads)
            else:
                x = x + _attend(att, y, ck, cv, visible, cfg.num_heads)
            new.append((ck, cv))
            c = lp["cross_attention"]
            y = _layer_norm(x, c["LayerNorm"])
            x = x + _attend(c["multihead_attention"], y, mk, mv, memory_mask, cfg.num_heads)
            x = _feed_forward(lp["ffn"], x)
        logits = _layer_norm(x[:, 0], p["LayerNorm"]) @ table.T
        return logits, ((new, origin) if beams else new)

    def log_probs(self, logits: jax.Array, t: jax.Array, min_len: int) -> jax.Array:
        vocab = jnp.arange(logits.shape[-1])
        banned = (vocab == PAD_ID) | (vocab == BOS_ID) | ((vocab == EOS_ID) & (t < min_len))
        return jax.nn.log_softmax(jnp.where(banned, NEG_INF, logits))

    def greedy(self, params, src, src_mask, min_len=0):
        batch, max_len = src.shape[0], self.cfg.max_tgt_len
        memory = self.encode(params, src, src_mask)
        ends = models._segment_ends(max_len)  # the example's, for the same algorithm
        memory_kv, cache = self.start(params, memory, ends[0])
        memory_mask = src_mask[:, None, None, :]

        def body(loop):
            t, token, out, finished, cache = loop
            logits, cache = self.step(params, memory_kv, memory_mask, cache, token, t)
            token = jnp.argmax(self.log_probs(logits, t, min_len), -1).astype(jnp.int32)
            token = jnp.where(finished, PAD_ID, token)
            out = out.at[:, t].set(token)
            return t + 1, token, out, finished | (token == EOS_ID), cache

        out = jnp.full((batch, max_len), PAD_ID, jnp.int32)
        loop = (0, jnp.full(batch, BOS_ID, jnp.int32), out, jnp.zeros(batch, bool), cache)
        for end in ends:
            loop = _segment(body, loop, end, lambda cache, end=end: _grow(cache, end))
        return loop[2]

    def beam(self, params, src, src_mask, beam_size=4, min_len=0):
        """Beam search without length penalty: the best beam's tokens."""
        batch, max_len, k = src.shape[0], self.cfg.max_tgt_len, beam_size
        memory = jnp.repeat(self.encode(params, src, src_mask), k, axis=0)
        ends = models._segment_ends(max_len)
        memory_kv, cache = self.start(params, memory, ends[0], beams=k)
        memory_mask = jnp.repeat(src_mask, k, axis=0)[:, None, None, :]
        first_row = jnp.arange(batch)[:, None] * k

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
            caches, origins = cache  # only the origins move
            rows = (first_row + origin).reshape(-1)
            cache = caches, origins.reshape(batch * k, -1)[rows].reshape(origins.shape)
            return t + 1, out, scores, finished, cache

        out = jnp.full((batch, k, max_len), PAD_ID, jnp.int32)
        scores = jnp.where(jnp.arange(k) == 0, 0.0, NEG_INF) * jnp.ones((batch, 1))
        loop = (0, out, scores, jnp.zeros((batch, k), bool), cache)
        for end in ends:
            grow = lambda cache, end=end: (_grow(cache[0], end), _grow_origin(cache[1], end))  # noqa: E731
            loop = _segment(body, loop, end, grow)
        return loop[1][:, 0]


# --- measuring ---------------------------------------------------------------------

REPEATS = 7
SEARCHES = ("greedy", "beam")
# --quick: tiny sizes, a smoke test.
QUICK = dict(lengths=[4, 8], batch=2, src_len=5, width=8, hidden=16, heads=2, vocab=11)


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


def decoders(length: int, args: argparse.Namespace) -> dict[tuple, Callable[[], Any]]:
    """Every implementation's greedy and beam decoder at ``length``, compiled
    and checked to give jaxscope's tokens: ``{(search, impl, length): call}``."""
    cfg = config(length, args)
    rng = np.random.default_rng(0)
    src = jnp.asarray(rng.integers(3, args.vocab, (args.batch, args.src_len)), jnp.int32)
    mask = jnp.ones(src.shape, bool)
    cached = models.build(cfg)
    params = cached.train.init(0, src, mask, jnp.full((args.batch, 4), BOS_ID))
    ways = {"jaxscope": cached, "pure JAX": HandWritten(cfg)}
    if length <= args.uncached_up_to:
        ways["uncached"] = models.build(cfg, cached=False)
    calls = {}
    for search in SEARCHES:
        options = dict(min_len=length, **({"beam_size": args.beam} if search == "beam" else {}))
        tokens = {}
        for impl in IMPLS:
            if impl not in ways:
                continue
            way = getattr(ways[impl], search)
            fn = functools.partial(getattr(way, "apply", way), **options)
            compiled = jax.jit(fn).lower(params, src, mask).compile()
            call = functools.partial(compiled, params, src, mask)
            tokens[impl] = np.asarray(call())
            calls[search, impl, length] = lambda call=call: jax.block_until_ready(call())
        for impl, t in tokens.items():
            if not np.array_equal(t, tokens["jaxscope"]):
                raise SystemExit(f"{impl} {search} decodes other tokens than jaxscope at {length}")
        assert (tokens["jaxscope"] != EOS_ID).all()  # min_len: exactly `length` tokens
    return calls


def report(per_token: dict[tuple, harness.Samples], args: argparse.Namespace) -> tuple[str, dict]:
    """The section's body and the judged figures. ``per_token``: the samples
    of each decoder, divided by its length."""
    short, long_ = min(args.lengths), max(args.lengths)
    goals = harness.targets("decode")
    rows = []
    for search in SEARCHES:
        for length in args.lengths:
            base = per_token[search, "pure JAX", length]
            for impl in IMPLS:
                s = per_token.get((search, impl, length))
                if s is not None:
                    rows.append(
                        [
                            search,
                            str(length),
                            impl,
                            f"{args.batch / s.median:,.0f}",
                            harness.format_time(s.median),
                            harness.format_time(s.cpu_median),
                            f"{s.cpu_median / base.cpu_median:.2f}x",
                        ]
                    )
    figures: dict[str, float] = {}
    lines = []
    for search in SEARCHES:

        def ratio(a, b, search=search):
            return per_token[search, *a].cpu_median / per_token[search, *b].cpu_median

        growth = ratio(("jaxscope", long_), ("jaxscope", short))
        worst = max(ratio(("jaxscope", n), ("pure JAX", n)) for n in args.lengths)
        figures[f"{search}_per_token_{long_}_over_{short}"] = growth
        figures[f"{search}_over_pure_jax"] = worst
        others = f"pure JAX {ratio(('pure JAX', long_), ('pure JAX', short)):.2f}x"
        goal = goals[f"{search}_per_token_long_over_short"]
        lines.append(
            f"- {search}: jaxscope's CPU time per token at L = {long_} over L = {short}: "
            f"{growth:.2f}x ({others}); target at most {goal}x: {harness.verdict(growth, goal)}"
        )
        per_length = ", ".join(
            f"{ratio(('jaxscope', n), ('pure JAX', n)):.2f}x at L = {n}" for n in args.lengths
        )
        goal = goals[f"{search}_over_pure_jax"]
        lines.append(
            f"- {search}: jaxscope's CPU time over the hand-written decoder's: {per_length}; "
            f"target at most {goal}x at every length: {harness.verdict(worst, goal)}"
        )
        for n in args.lengths:
            if (search, "uncached", n) in per_token:
                slower = ratio(("uncached", n), ("jaxscope", n))
                lines.append(f"- {search}, L = {n}: the uncached decoder takes {slower:.1f}x.")
    body = "\n".join(
        [
            f"Model B of `examples/seq2seq`: width {args.width}, feed-forward {args.hidden}, "
            f"{args.layers} encoder and {args.layers} decoder layers, {args.heads} heads, "
            f"vocabulary {args.vocab}; batch {args.batch}, source length {args.src_len}, beam "
            f"size {args.beam}, untrained params. Every decode emits exactly L tokens per "
            "sequence (`min_len=L`), and every implementation the same tokens. "
            f"{args.repeats} samples per decoder, interleaved. Tokens per second count "
            "the output tokens (batch x L; beam search's best beam); the cost per token "
            "is a decode's median time over L, wall-clock and process CPU time. The "
            "targets are judged on CPU time: on a shared machine the wall-clock time "
            "mostly measures the other jobs. Both cached decoders keep each layer's "
            "cache an array of its own, which XLA updates in place (the example through "
            "`js.layer_stack(..., per_layer_lists=True)`; caches stacked by layer are "
            "copied in and out of the stack at every step). Both grow their caches "
            "in segments (16 positions at first, then a quarter more at a time: "
            "`KVCache.grow`, one `while_loop` per segment), so that a step attends "
            "to little more than the positions filled so far. Beam search's caches "
            "stay where they were written: reordering the beams moves only the "
            "indices of the beam holding each position (`KVCache.zeros(..., "
            "beams=True)`), and each beam's query attends to every beam's row of its "
            "example, one product per beam (beam size times the reading of the "
            "cache, none of the copying).",
            "",
            harness.table(
                [
                    "decoder",
                    "L",
                    "implementation",
                    "tokens/s",
                    "per token",
                    "per token, CPU",
                    "CPU over pure JAX",
                ],
                rows,
            ),
            "",
            *lines,
        ]
    )
    return body, figures


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("decode", __doc__, REPEATS)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
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
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
        args.uncached_up_to = 0  # the quadratic decoder is tested elsewhere
    args.repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    calls = {key: call for n in args.lengths for key, call in decoders(n, args).items()}
    samples = harness.interleave(calls, args.repeats, warmup=0)
    per_token = {
        key: harness.Samples([t / key[2] for t in s.wall], [t / key[2] for t in s.cpu])
        for key, s in samples.items()
    }
    body, figures = report(per_token, args)
    raw = {
        "figures": figures,
        "per_token_s": {
            " ".join(map(str, key)): {"wall": s.median, "cpu": s.cpu_median}
            for key, s in per_token.items()
        },
    }
    return harness.finish("decode", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
