"""Where jaxscope's trace time goes, in µs per ``get_variable`` call.

    python -m benchmarks.profile_trace               # depth-100 MLP, 20 traces
    python -m benchmarks.profile_trace --top 25
    python -m benchmarks.profile_trace --quick       # depth 3, 1 trace: a smoke test

Traces the jaxscope version of the depth-100 MLP (200 variables, see
``benchmarks.mlp``) with ``jax.make_jaxpr`` under cProfile and lists, per
``get_variable`` call, jaxscope's functions by time with callees and all
functions by their own time, with ``file:line``. Without the profiler it
also measures the overhead itself: jaxscope's trace time minus pure JAX's,
per variable, and the same scopes and ``get_variable`` calls traced alone,
without the layers' math between them. All times are this process's CPU
time. cProfile inflates the cost of small functions: read the tables for the
ranking, the first lines for the size.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from typing import Any

import jax

import jaxscope as js
from benchmarks import harness, mlp
from benchmarks.harness import Impl

JAXSCOPE_DIR = os.path.dirname(os.path.abspath(js.__file__))
REPEATS = 20


def _overhead(pure: Impl, scoped: Impl, params: Any, x: jax.Array, repeats: int) -> float:
    """Median CPU seconds of tracing ``scoped`` minus ``pure``'s."""
    calls = {
        name: (lambda impl=impl: jax.make_jaxpr(harness.fresh(impl.apply))(params, x))
        for name, impl in (("pure", pure), ("scoped", scoped))
    }
    samples = harness.interleave(calls, repeats)
    return samples["scoped"].cpu_median - samples["pure"].cpu_median


def _alone(depth: int, width: int) -> tuple[Impl, Impl]:
    """The MLP's scopes and ``get_variable`` calls without the layers' math,
    and a transform that does nothing."""

    def scoping(x: jax.Array) -> jax.Array:
        for i in range(depth):
            with js.variable_scope(f"layer_{i}"):
                js.get_variable("kernel", [x.shape[-1], width])
                js.get_variable("bias", [width], initializer=js.initializers.zeros)
        return x

    empty, alone = js.transform(lambda x: x), js.transform(scoping)
    return Impl("nothing", empty.init, empty.apply), Impl("alone", alone.init, alone.apply)


def _where(key: tuple) -> str:
    filename, line, name = key
    if filename.startswith(JAXSCOPE_DIR):
        filename = "jaxscope/" + os.path.relpath(filename, JAXSCOPE_DIR)
    elif "site-packages" in filename:
        filename = filename.split("site-packages" + os.sep, 1)[1]
    return f"{filename}:{line}({name})"


def profile(depth: int, repeats: int, top: int) -> tuple[str, dict[str, float]]:
    """The report (plain text) and its headline figures, µs per variable."""
    pure, scoped = mlp.pure_jax(depth, mlp.WIDTH), mlp.jaxscope(depth, mlp.WIDTH)
    x = jax.numpy.ones((mlp.BATCH, mlp.WIDTH), jax.numpy.float32)
    params = pure.init(jax.random.key(0), x)
    n = 2 * depth
    overhead = _overhead(pure, scoped, params, x, repeats) / n
    alone = _overhead(*_alone(depth, mlp.WIDTH), params, x, repeats) / n

    profiler = cProfile.Profile(time.process_time)
    for _ in range(repeats):
        fn = harness.fresh(scoped.apply)
        profiler.enable()
        jax.make_jaxpr(fn)(params, x)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # {key: (cc, ncalls, tottime, cumtime, callers)}
    calls = n * repeats

    def rows(keys: list, sort_index: int) -> list[str]:
        keys = sorted(keys, key=lambda k: -stats[k][sort_index])[:top]
        out = [f"{'calls/var':>9} {'own µs/var':>10} {'cum µs/var':>10}  function"]
        for k in keys:
            _, ncalls, tottime, cumtime, _ = stats[k]
            out.append(
                f"{ncalls / calls:9.2f} {1e6 * tottime / calls:10.2f} "
                f"{1e6 * cumtime / calls:10.2f}  {_where(k)}"
            )
        return out

    own = [k for k in stats if k[0].startswith(JAXSCOPE_DIR)]
    in_jaxscope = sum(stats[k][2] for k in own) / calls
    figures = {
        "overhead_us_per_variable": 1e6 * overhead,
        "alone_us_per_variable": 1e6 * alone,
        "jaxscope_own_code_us_per_variable_profiled": 1e6 * in_jaxscope,
    }
    lines = [
        f"depth {depth}: {n} variables, {repeats} traces (CPU time)",
        f"overhead without the profiler: {figures['overhead_us_per_variable']:.1f} µs per "
        "get_variable (jaxscope's make_jaxpr minus pure JAX's, per variable)",
        f"the same scopes and get_variable calls alone, without the layers' math: "
        f"{figures['alone_us_per_variable']:.1f} µs per get_variable",
        f"in jaxscope's own code under cProfile: {1e6 * in_jaxscope:.1f} µs per get_variable",
        "",
        "jaxscope's functions, by time with callees:",
        *rows(own, 3),
        "",
        "all functions, by own time (JAX's tracing included):",
        *rows(list(stats), 2),
    ]
    return "\n".join(lines), figures


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the profile; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("profile_trace", __doc__, REPEATS)
    parser.add_argument("--top", type=int, default=15, help="rows per table (default 15)")
    parser.add_argument("--depth", type=int, default=None, help=f"layers (default {mlp.DEPTH})")
    args = parser.parse_args(argv)
    depth = args.depth or (mlp.QUICK_DEPTH if args.quick else mlp.DEPTH)
    repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    text, figures = profile(depth, repeats, args.top)
    body = f"The jaxscope MLP traced with `jax.make_jaxpr` under cProfile.\n\n```\n{text}\n```"
    return harness.finish("profile_trace", argv, args, info, start, body, {"figures": figures})


if __name__ == "__main__":
    run()
