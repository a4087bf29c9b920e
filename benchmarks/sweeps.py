"""Scaling sweeps: does a cost per variable or per scope stay flat as models grow?

    python -m benchmarks.sweeps                        # every sweep, about 10 minutes
    python -m benchmarks.sweeps --only nesting,reentry
    python -m benchmarks.sweeps --quick                # tiny sizes: a smoke test

Each sweep measures one size several times and reports the cost per unit
(variable, scope, re-entry) at each, and the ratio of the largest size's
over the smallest's; a flat cost gives a ratio near 1. Only the public API
is used, so the sweeps measure any version of jaxscope. Times are this
process's CPU time (other load on the machine hardly changes it), medians of
samples interleaved across the sizes, each trace on a fresh function; the
compile sweep reports wall-clock time.

- ``names``: ``jax.make_jaxpr(f.apply)`` of ten models (chunks) of 20,000
  variables, each variable in a scope of its own, 200,000 distinct names in
  all, each chunk traced once in
  order and then again: the time per variable of each chunk. A name cache
  that stops growing shows as a step between the chunks before and after
  it filled. Runs first, in a process that has seen no names yet.
- ``nesting``: a 100-layer MLP (200 variables) with its layers under 0, 7
  or 63 more scopes, so the variables sit at nesting depth 1, 8 or 64: the
  trace-time overhead per variable over the pure-JAX MLP reading the same
  nested params tree, and over that MLP opening the same ``jax.named_scope`` s
  (what JAX charges for a deeper name stack, for reference); the median
  over 15 fresh processes.
- ``default_name``: 100, 1,000 and 2,000 sibling ``js.nn.dense`` layers
  named by ``default_name`` (``dense``, ``dense_1``, ...): trace time per
  scope, and pure JAX's for the same layers.
- ``reentry``: a captured scope re-entered 100 times with 100 other scopes
  opened, and 20,000 times with 20,000 opened, each re-entry reading a
  variable (TF1's per-step re-entry): time per re-entry, measured inside
  the trace.
- ``layer_stack``: ``jax.jit(f.init).lower(...).compile()`` of a
  ``js.layer_stack`` MLP (width 64) of 4, 64 and 512 layers, each in a fresh
  process with a timeout (``--timeout``), and a pure-JAX init of the same
  stacked variables (one vmapped initializer) for reference.
- ``eval_shape``: ``jax.eval_shape(f.init)`` of a 100,000-variable model
  (50,000 layers of a kernel and a bias) against ``jax.make_jaxpr(f.apply)``,
  per variable.
- ``scope_depth``: ``init``, eager and under ``jax.make_jaxpr``, of 100 and
  1,000 nested scopes holding a variable each: time per scope.

Targets: ``benchmarks/targets.toml``, ``[sweeps]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import jaxscope as js
from benchmarks import harness, mlp

REPEATS = 5
SWEEPS = ("names", "nesting", "default_name", "reentry", "layer_stack", "eval_shape", "scope_depth")
# Sizes: full run, and --quick.
SIZES = {
    "names": ((200_000, 20_000, 100_000), (1_000, 250, 500)),  # (total, chunk, step at)
    "nesting": ((1, 8, 64), (1, 4)),
    "default_name": ((100, 1_000, 2_000), (10, 20)),
    "reentry": ((100, 20_000), (10, 50)),
    "layer_stack": ((4, 64, 512), (1, 2)),
    "eval_shape": ((100_000,), (200,)),
    "scope_depth": ((100, 1_000), (5, 10)),
}
MLP_LAYERS, QUICK_MLP_LAYERS = 100, 3


def _abstract_params(f: js.Transformed, *args: Any) -> Any:
    return jax.eval_shape(f.init, jax.random.key(0), *args)


def _trace(apply: Callable, params: Any, *args: Any) -> Callable[[], Any]:
    """A call that traces ``apply`` afresh with ``jax.make_jaxpr``."""
    return lambda: jax.make_jaxpr(harness.fresh(apply))(params, *args)


def _us(seconds: float) -> str:
    return f"{1e6 * seconds:.1f} µs"


class _Section:
    """What a sweep reports: a table, figures, and verdict lines."""

    def __init__(self, title: str):
        self.title = title
        self.lines, self.verdicts, self.figures = [], [], {}

    def judge(self, text: str, value: float | None, target_key: str) -> None:
        """A verdict line: ``value`` against its target (none where
        ``targets.toml`` has none for these sizes); ``None`` for a run out
        of time, NaN for a ratio without a positive base."""
        target = harness.targets("sweeps").get(target_key)
        if value is None:
            shown = "did not finish"
        elif math.isnan(value):
            shown = "not measurable"
        else:
            shown = f"{value:.2f}x"
        if target is None:
            self.verdicts.append(f"{text}: {shown}")
        else:
            verdict = harness.verdict(value, target)
            self.verdicts.append(f"{text}: {shown}; target at most {target}x: {verdict}")
        self.figures[target_key] = value

    def markdown(self) -> str:
        return "\n".join([f"### {self.title}", "", *self.lines])


# --- names -----------------------------------------------------------------------


def _chunk(start: int, size: int, prefix: str = "layer_") -> tuple[Callable, Any]:
    """A model obtaining ``size`` scalar variables named
    ``chunk_<start>/<prefix><start + i>/w``, each in its own scope as a
    layer's are (and doing nothing with them), and its abstract params,
    built without running the model (which would show jaxscope the names)."""

    def model(x: jax.Array) -> jax.Array:
        with js.variable_scope(f"chunk_{start}"):
            for i in range(start, start + size):
                with js.variable_scope(f"{prefix}{i}"):
                    js.get_variable("w", [], initializer=js.initializers.zeros)
        return x

    scalar = {"w": jax.ShapeDtypeStruct((), jnp.float32)}
    params = {f"chunk_{start}": {f"{prefix}{i}": scalar for i in range(start, start + size)}}
    return js.transform(model).apply, params


def names(quick: bool, repeats: int) -> _Section:
    total, size, step_at = SIZES["names"][quick]
    section = _Section(f"Distinct names, up to {total:,} ({size:,} per chunk)")
    x = jnp.zeros(())
    _trace(*_chunk(0, 8, prefix="warm"), x)()  # names of their own, to warm JAX up
    chunks = {start: _chunk(start, size) for start in range(0, total, size)}
    first = {}
    for start, chunk in chunks.items():  # names never seen: one sample each, in order
        first[start] = harness.interleave({start: _trace(*chunk, x)}, 1, warmup=0)[start]
    later = harness.interleave({start: _trace(*c, x) for start, c in chunks.items()}, repeats)
    per_first = {start: s.cpu_median / size for start, s in first.items()}
    per_later = {start: s.cpu_median / size for start, s in later.items()}
    rows = [
        [f"{start:,} to {start + size:,}", _us(per_first[start]), _us(per_later[start])]
        for start in chunks
    ]
    before = [per_later[s] for s in chunks if s < step_at]
    after = [per_later[s] for s in chunks if s >= step_at]
    step = statistics.median(after) / statistics.median(before) if before and after else None
    section.lines += [
        harness.table(["names", "first trace, per variable", "later traces, per variable"], rows),
        "",
        f"Each chunk is traced once in order (its names never seen before), then all chunks "
        f"again, {repeats} times, interleaved. The step compares the later traces' median time "
        f"per variable of the chunks from {step_at:,} names on with that of the chunks before.",
    ]
    section.judge(
        f"time per variable of names seen after the first {step_at:,} over before",
        step,
        "names_after_100000_over_before",
    )
    section.figures["first_s_per_variable"] = per_first
    section.figures["later_s_per_variable"] = per_later
    return section


# --- nesting ---------------------------------------------------------------------


def _nested_mlp(layers: int, width: int, nesting: int) -> tuple[js.Transformed, Callable, Callable]:
    """The MLP with its layers under ``nesting - 1`` more scopes, and pure
    JAX's same MLP reading the same nested params tree, without and with
    the ``jax.named_scope`` s that jaxscope's scopes open."""

    def model(x: jax.Array) -> jax.Array:
        with contextlib.ExitStack() as scopes:
            for j in range(nesting - 1):
                scopes.enter_context(js.variable_scope(f"n{j}"))
            for i in range(layers):
                with js.variable_scope(f"layer_{i}"):
                    kernel = js.get_variable("kernel", [width, width])
                    bias = js.get_variable("bias", [width], initializer=js.initializers.zeros)
                x = jnp.tanh(x @ kernel + bias)
        return x

    def pure(params: dict, x: jax.Array, named: bool = False) -> jax.Array:
        op_names = contextlib.nullcontext if not named else jax.named_scope
        with contextlib.ExitStack() as scopes:
            for j in range(nesting - 1):
                params = params[f"n{j}"]
                if named:
                    scopes.enter_context(jax.named_scope(f"n{j}"))
            for i in range(layers):
                with op_names(f"layer_{i}"):
                    kernel, bias = params[f"layer_{i}"]["kernel"], params[f"layer_{i}"]["bias"]
                x = jnp.tanh(x @ kernel + bias)
        return x

    return js.transform(model), pure, functools.partial(pure, named=True)


NESTING_PROCESSES = 15


def nesting_medians(quick: bool, repeats: int) -> dict[str, dict[int, float]]:
    """One process's median CPU time per trace of each way at each depth."""
    depths, layers, width = SIZES["nesting"][quick], QUICK_MLP_LAYERS if quick else MLP_LAYERS, 16
    x = jnp.ones((8, width), jnp.float32)
    calls = {}
    for d in depths:
        f, pure, named = _nested_mlp(layers, width, d)
        params = _abstract_params(f, x)
        calls["pure JAX", d] = _trace(pure, params, x)
        calls["named", d] = _trace(named, params, x)
        calls["jaxscope", d] = _trace(f.apply, params, x)
    timed = harness.interleave(calls, repeats)
    medians: dict[str, dict[int, float]] = {}
    for (way, d), samples in timed.items():
        medians.setdefault(way, {})[d] = samples.cpu_median
    return medians


def nesting(quick: bool, repeats: int) -> _Section:
    depths, layers = SIZES["nesting"][quick], QUICK_MLP_LAYERS if quick else MLP_LAYERS
    section = _Section(f"Nesting depth: {layers}-layer MLP, {2 * layers} variables")
    if quick:
        runs = [nesting_medians(quick, repeats)]
    else:
        runs = []
        for _ in range(NESTING_PROCESSES):
            records, _ = harness.isolated(
                "benchmarks.sweeps", ["--nesting-process", str(repeats)], timeout=600
            )
            runs.append({way: {int(d): t for d, t in by.items()} for way, by in records[0].items()})

    def per_variable(way: str, base: str, d: int) -> float:
        return statistics.median((run[way][d] - run[base][d]) / (2 * layers) for run in runs)

    def growth(base: str) -> float:
        lo, hi = depths[0], depths[-1]
        ratios = [
            (run["jaxscope"][hi] - run[base][hi]) / (run["jaxscope"][lo] - run[base][lo])
            if run["jaxscope"][lo] > run[base][lo]
            else math.nan
            for run in runs
        ]
        return statistics.median(ratios)

    def median(way: str, d: int) -> float:
        return statistics.median(run[way][d] for run in runs)

    base = {d: median("pure JAX", d) for d in depths}
    named_base = {d: median("named", d) for d in depths}
    over = {d: per_variable("jaxscope", "pure JAX", d) for d in depths}
    over_named = {d: per_variable("jaxscope", "named", d) for d in depths}
    scoped = {d: median("jaxscope", d) for d in depths}
    section.lines += [
        harness.table(
            [
                "nesting depth",
                "pure JAX (`make_jaxpr`)",
                "pure JAX + `jax.named_scope`",
                "jaxscope",
                "overhead per variable over pure JAX",
                "over pure JAX + `jax.named_scope`",
            ],
            [
                [
                    str(d),
                    harness.format_time(base[d]),
                    harness.format_time(named_base[d]),
                    harness.format_time(scoped[d]),
                    _us(over[d]),
                    _us(over_named[d]),
                ]
                for d in depths
            ],
        ),
        "",
        "Pure JAX reads the same nested params tree: JAX's own cost of a deeper tree "
        "(its argument paths, formatted per leaf) is not counted as jaxscope's. Pure JAX + "
        "`jax.named_scope` also opens the op-name scopes jaxscope's scopes open (the outer "
        "ones, and one per layer around its reads), so the last column leaves out what JAX "
        "charges for a deeper name stack, and the outer scopes' entries are jaxscope's "
        "entries beyond JAX's.",
    ]
    if len(runs) > 1:
        section.lines += [
            "",
            f"Each of {len(runs)} fresh processes takes its medians; the table shows their "
            "medians, the ratios below the median of each process's ratio: a process's times "
            "differ from another's by a few percent (its memory layout, its hash seed), about "
            "as much as the overhead itself.",
        ]
    section.judge(
        f"overhead per variable, depth {depths[-1]} over depth {depths[0]}",
        growth("pure JAX"),
        "nesting_64_over_1",
    )
    section.verdicts.append(
        f"overhead per variable over pure JAX + `jax.named_scope`, depth {depths[-1]} over "
        f"depth {depths[0]}: {growth('named'):.2f}x (for reference)"
    )
    section.figures["overhead_s_per_variable"] = over
    section.figures["overhead_over_named_scope_s_per_variable"] = over_named
    return section


# --- default_name ----------------------------------------------------------------


def _siblings(n: int, width: int) -> tuple[js.Transformed, Callable]:
    """``n`` sibling ``js.nn.dense`` layers, and pure JAX's same layers."""

    def model(x: jax.Array) -> jax.Array:
        for _ in range(n):
            x = js.nn.dense(x, width)
        return x

    scope_names = ["dense"] + [f"dense_{i}" for i in range(1, n)]

    def pure(params: dict, x: jax.Array) -> jax.Array:
        for name in scope_names:
            x = x @ params[name]["kernel"] + params[name]["bias"]
        return x

    return js.transform(model), pure


def default_name(quick: bool, repeats: int) -> _Section:
    counts, width = SIZES["default_name"][quick], 4
    section = _Section("Sibling `default_name` scopes (`js.nn.dense` layers)")
    x = jnp.ones((1, width), jnp.float32)
    calls = {}
    for n in counts:
        f, pure = _siblings(n, width)
        params = _abstract_params(f, x)
        calls["jaxscope", n] = _trace(f.apply, params, x)
        calls["pure JAX", n] = _trace(pure, params, x)
    timed = harness.interleave(calls, repeats)
    per = {key: s.cpu_median / key[1] for key, s in timed.items()}
    section.lines.append(
        harness.table(
            ["siblings", "jaxscope, per scope", "pure JAX, per scope", "jaxscope over pure JAX"],
            [
                [
                    f"{n:,}",
                    _us(per["jaxscope", n]),
                    _us(per["pure JAX", n]),
                    f"{per['jaxscope', n] / per['pure JAX', n]:.2f}x",
                ]
                for n in counts
            ],
        )
    )
    lo, hi = counts[0], counts[-1]
    section.lines += [
        "",
        f"Pure JAX's own time per layer, {hi:,} over {lo:,}: "
        f"{per['pure JAX', hi] / per['pure JAX', lo]:.2f}x.",
    ]
    section.judge(
        f"trace time per scope, {hi:,} siblings over {lo:,}",
        per["jaxscope", hi] / per["jaxscope", lo],
        "default_name_2000_over_100",
    )
    section.figures["per_scope_s"] = {f"{k[0]} {k[1]}": v for k, v in per.items()}
    return section


# --- reentry ---------------------------------------------------------------------


def _reentries(n: int, phase: list[float]) -> js.Transformed:
    """Opens ``n`` scopes, then re-enters a captured scope ``n`` times,
    appending the CPU seconds of the re-entries to ``phase``."""

    def model(x: jax.Array) -> jax.Array:
        with js.variable_scope("captured") as captured:
            x = x + js.get_variable("w", [4])
        for i in range(n):
            with js.variable_scope(f"s{i}"):
                pass
        start = time.process_time()
        for _ in range(n):
            with js.variable_scope(captured, reuse=True):
                x = x + js.get_variable("w", [4])
        phase.append(time.process_time() - start)
        return x

    return js.transform(model)


def reentry(quick: bool, repeats: int) -> _Section:
    counts = SIZES["reentry"][quick]
    section = _Section("Captured-scope re-entries")
    x = jnp.ones(4, jnp.float32)
    phases: dict[int, list[float]] = {n: [] for n in counts}
    calls = {}
    for n in counts:
        f = _reentries(n, phases[n])
        calls[n] = _trace(f.apply, _abstract_params(f, x), x)
    harness.interleave(calls, repeats)
    per = {n: statistics.median(phases[n][-repeats:]) / n for n in counts}
    section.lines.append(
        harness.table(
            ["scopes opened = re-entries", "time per re-entry (with one `get_variable`)"],
            [[f"{n:,}", _us(per[n])] for n in counts],
        )
    )
    lo, hi = counts[0], counts[-1]
    section.judge(
        f"time per re-entry, {hi:,} over {lo:,}", per[hi] / per[lo], "reentry_20000_over_100"
    )
    section.figures["per_reentry_s"] = per
    return section


# --- layer_stack -----------------------------------------------------------------


def _stacked(layers: int, width: int) -> dict[str, Callable]:
    """``init`` of a ``js.layer_stack`` MLP and pure JAX's init of the same
    stacked variables."""
    glorot = jax.nn.initializers.glorot_uniform()

    def model(x: jax.Array) -> jax.Array:
        @js.layer_stack(layers)
        def layer(x: jax.Array) -> jax.Array:
            kernel = js.get_variable("kernel", [width, width])
            bias = js.get_variable("bias", [width], initializer=js.initializers.zeros)
            return jnp.tanh(x @ kernel + bias)

        with js.variable_scope("stack"):
            return layer(x)

    def pure_init(rng: jax.Array, x: jax.Array) -> dict:
        keys = jax.random.split(rng, layers)
        kernels = jax.vmap(lambda k: glorot(k, (width, width), jnp.float32))(keys)
        return {"stack": {"kernel": kernels, "bias": jnp.zeros((layers, width), jnp.float32)}}

    return {"pure JAX": pure_init, "jaxscope": js.transform(model).init}


def compile_points(depths: list[int]) -> None:
    """Prints one JSON line per depth and implementation: the seconds of
    ``lower`` and ``compile`` of ``jax.jit(init)`` (run by the sweep in a
    fresh process)."""
    width, x, rng = 64, jnp.ones((8, 64), jnp.float32), jax.random.key(0)
    for init in _stacked(1, width).values():  # warm JAX and XLA up
        jax.jit(init).lower(rng, x).compile()
    for layers in depths:
        for name, init in _stacked(layers, width).items():
            start = time.perf_counter()
            lowered = jax.jit(init).lower(rng, x)
            lowered_at = time.perf_counter()
            lowered.compile()
            end = time.perf_counter()
            record = {"layers": layers, "impl": name, "lower_s": lowered_at - start}
            record.update(compile_s=end - lowered_at, total_s=end - start)
            print(json.dumps(record), flush=True)


def layer_stack(quick: bool, repeats: int, timeout: float) -> _Section:
    depths = SIZES["layer_stack"][quick]
    repeats = min(repeats, 3)
    section = _Section("`jax.jit(f.init)` of a `js.layer_stack` MLP, width 64: compile time")
    samples: dict[int, dict[str, list[dict]]] = {d: {} for d in depths}
    unfinished: set[int] = set()
    # A fresh process per depth, with its own timeout (--quick: one for all).
    groups = [list(depths)] if quick else [[d] for d in depths]
    for round_ in range(repeats):
        shift = round_ % len(groups)
        for group in groups[shift:] + groups[:shift]:
            if unfinished & set(group):
                continue
            points = ",".join(map(str, group))
            records, _ = harness.isolated(
                "benchmarks.sweeps", ["--compile-points", points], timeout
            )
            for record in records:
                samples[record["layers"]].setdefault(record["impl"], []).append(record)
            done = {r["layers"] for r in records if r["impl"] == "jaxscope"}
            unfinished |= set(group) - done

    def median(d: int, impl: str, field: str) -> float | None:
        runs = samples[d].get(impl, [])
        if d in unfinished and impl == "jaxscope" or not runs:
            return None
        return statistics.median(r[field] for r in runs)

    def cell(d: int, impl: str, field: str) -> str:
        value = median(d, impl, field)
        return f"did not finish in {timeout:.0f} s" if value is None else harness.format_time(value)

    section.lines.append(
        harness.table(
            [
                "layers",
                "jaxscope: lower",
                "jaxscope: compile",
                "jaxscope: total",
                "pure JAX, vmapped init: total",
            ],
            [
                [
                    str(d),
                    cell(d, "jaxscope", "lower_s"),
                    cell(d, "jaxscope", "compile_s"),
                    cell(d, "jaxscope", "total_s"),
                    cell(d, "pure JAX", "total_s"),
                ]
                for d in depths
            ],
        )
    )
    section.lines += [
        "",
        f"Wall-clock time, the median of up to {repeats} fresh processes per depth (each "
        "compiles a 1-layer model first, to warm up; a depth that runs out of time is not "
        "tried again).",
    ]
    base = median(depths[0], "jaxscope", "total_s")
    for d in depths[1:]:
        total = median(d, "jaxscope", "total_s")
        ratio = None if total is None or not base else total / base
        label = f"compile time, {d} layers over {depths[0]}"
        section.judge(label, ratio, f"layer_stack_{d}_over_{depths[0]}")
    section.figures["samples"] = samples
    return section


# --- eval_shape ------------------------------------------------------------------


def _wide(n_variables: int, width: int = 4) -> tuple[js.Transformed, harness.Impl]:
    """``n_variables / 2`` layers of a kernel and a bias: jaxscope and pure JAX."""
    layers = n_variables // 2

    def model(x: jax.Array) -> jax.Array:
        for i in range(layers):
            with js.variable_scope(f"layer_{i}"):
                kernel = js.get_variable("kernel", [width, width])
                bias = js.get_variable("bias", [width], initializer=js.initializers.zeros)
            x = x @ kernel + bias
        return x

    return js.transform(model), mlp.pure_jax(layers, width)


def eval_shape(quick: bool, repeats: int) -> _Section:
    (n,) = SIZES["eval_shape"][quick]
    repeats = min(repeats, 3)
    section = _Section(f"`jax.eval_shape(f.init)` of a {n:,}-variable model")
    x = jnp.ones((1, 4), jnp.float32)
    f, pure = _wide(n)
    rng = jax.random.key(0)
    calls = {
        ("jaxscope", "eval_shape"): lambda: jax.eval_shape(harness.fresh(f.init), rng, x),
        ("jaxscope", "make_jaxpr"): _trace(f.apply, _abstract_params(f, x), x),
        ("pure JAX", "eval_shape"): lambda: jax.eval_shape(harness.fresh(pure.init), rng, x),
        ("pure JAX", "make_jaxpr"): _trace(pure.apply, jax.eval_shape(pure.init, rng, x), x),
    }
    timed = harness.interleave(calls, repeats, warmup=0)
    per = {key: s.cpu_median / n for key, s in timed.items()}
    section.lines.append(
        harness.table(
            ["per variable", "jaxscope", "pure JAX"],
            [
                [label, _us(per["jaxscope", key]), _us(per["pure JAX", key])]
                for key, label in (
                    ("eval_shape", "`jax.eval_shape(init)`"),
                    ("make_jaxpr", "`jax.make_jaxpr(apply)`"),
                )
            ],
        )
    )
    section.lines += ["", f"{repeats} samples each, no warm-up (a sample is long)."]
    section.judge(
        "`eval_shape(init)` per variable over `make_jaxpr(apply)` per variable",
        per["jaxscope", "eval_shape"] / per["jaxscope", "make_jaxpr"],
        "eval_shape_init_over_apply_trace",
    )
    section.figures["per_variable_s"] = {f"{a} {b}": v for (a, b), v in per.items()}
    return section


# --- scope_depth -----------------------------------------------------------------


def _deep(depth: int) -> js.Transformed:
    """``depth`` scopes, each inside the previous, with a variable in each."""

    def model(x: jax.Array) -> jax.Array:
        with contextlib.ExitStack() as scopes:
            for i in range(depth):
                scopes.enter_context(js.variable_scope(f"s{i}"))
                x = x + js.get_variable("b", [4], initializer=js.initializers.zeros)
        return x

    return js.transform(model)


def scope_depth(quick: bool, repeats: int) -> _Section:
    depths = SIZES["scope_depth"][quick]
    section = _Section("Scope depth: `init` per scope")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * max(depths) + 1000))
    x = jnp.zeros(4)
    calls = {}
    for d in depths:
        calls["eager", d] = lambda d=d: harness.block(harness.fresh(_deep(d).init)(0, x))
        calls["traced", d] = lambda d=d: jax.make_jaxpr(harness.fresh(_deep(d).init))(0, x)
    timed = harness.interleave(calls, min(repeats, 5))
    per = {key: s.cpu_median / key[1] for key, s in timed.items()}
    section.lines.append(
        harness.table(
            ["depth", "`init`, eager, per scope", "`init` under `make_jaxpr`, per scope"],
            [[f"{d:,}", _us(per["eager", d]), _us(per["traced", d])] for d in depths],
        )
    )
    lo, hi = depths[0], depths[-1]
    worst = max(per[mode, hi] / per[mode, lo] for mode in ("eager", "traced"))
    section.judge(
        f"`init` per scope, depth {hi:,} over {lo:,} (the larger of eager and traced)",
        worst,
        "scope_depth_1000_over_100",
    )
    section.figures["per_scope_s"] = {f"{a} {b}": v for (a, b), v in per.items()}
    return section


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Runs the sweeps; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("sweeps", __doc__, REPEATS)
    parser.add_argument(
        "--only", default=",".join(SWEEPS), help=f"comma-separated, of {', '.join(SWEEPS)}"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds each layer_stack compile process may take (default 180)",
    )
    parser.add_argument("--compile-points", help=argparse.SUPPRESS)
    parser.add_argument("--nesting-process", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_points:
        compile_points([int(d) for d in args.compile_points.split(",")])
        return None
    if args.nesting_process:
        print(json.dumps(nesting_medians(False, args.nesting_process)))
        return None
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    if set(chosen) - set(SWEEPS):
        parser.error(f"unknown sweeps {sorted(set(chosen) - set(SWEEPS))}; choose from {SWEEPS}")
    repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    sections = []
    for name in SWEEPS:  # in this order: names first, before any other sweep adds names
        if name not in chosen:
            continue
        print(f"[sweeps] {name} ...", file=sys.stderr, flush=True)
        extra = (args.timeout,) if name == "layer_stack" else ()
        sections.append((name, globals()[name](args.quick, repeats, *extra)))
    body = "\n".join(
        [
            f"Sweeps: {', '.join(chosen)}; up to {repeats} samples per point. Against the "
            "targets (`targets.toml`, `[sweeps]`):",
            "",
            *(f"- {line}" for _, s in sections for line in s.verdicts),
            "",
            "\n\n".join(s.markdown() for _, s in sections),
        ]
    )
    raw = {"figures": {name: s.figures for name, s in sections}}
    return harness.finish("sweeps", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
