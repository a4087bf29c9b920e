"""Where jaxscope's trace time goes, per ``get_variable`` call.

    python -m benchmarks.profile_trace --repeats 20 --top 15

Traces the jaxscope version of the depth-100 MLP (200 variables) with
``jax.make_jaxpr`` under cProfile and prints, per ``get_variable`` call, the
functions that cost the most: their own time (``tottime``) and with callees
(``cumtime``), in microseconds, with ``file:line``. The first line gives the
overhead measured without the profiler: jaxscope's trace time minus pure
JAX's, per variable. The second gives the same scopes and ``get_variable``
calls traced alone, without the layers' math between them: the same code
runs slower when it alternates with JAX's own tracing. All times are this
process's CPU time, so other load on the machine hardly matters. cProfile
inflates the cost of small functions, so read the table for ranking, the
first lines for the size.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time

import jax

import jaxscope as js
from benchmarks.models import Impl, identity, mlp

JAXSCOPE_DIR = os.path.dirname(os.path.abspath(mlp.js.__file__))


def _overhead(pure, scoped, params, x, repeats: int) -> float:
    """Median CPU time of tracing ``scoped`` minus ``pure``'s, samples
    interleaved (after one warm-up each)."""
    samples = {pure.name: [], scoped.name: []}
    for i in range(repeats + 1):
        for impl in (pure, scoped) if i % 2 else (scoped, pure):
            fn = lambda *a, impl=impl: impl.apply(*a)  # noqa: E731  (fresh: no trace cache)
            start = time.process_time()
            jax.make_jaxpr(fn)(params, x)
            if i:
                samples[impl.name].append(time.process_time() - start)
    return statistics.median(samples[scoped.name]) - statistics.median(samples[pure.name])


def _alone(depth: int, width: int) -> tuple[Impl, Impl]:
    """The jaxscope MLP's scopes and ``get_variable`` calls without the
    layers' math between them, and a transform that does nothing: the
    scoping's cost when nothing else is traced."""

    def scoping(x: jax.Array) -> jax.Array:
        for i in range(depth):
            with js.variable_scope(f"layer_{i}"):
                js.get_variable("kernel", [x.shape[-1], width])
                js.get_variable("bias", [width], initializer=js.initializers.zeros)
        return x

    empty = js.transform(lambda x: x)
    return (
        Impl("empty", "nothing", empty.init, empty.apply, identity, identity),
        Impl("alone", "scoping alone", *js.transform(scoping), identity, identity),
    )


def _where(key: tuple) -> str:
    filename, line, name = key
    if filename.startswith(JAXSCOPE_DIR):
        filename = "jaxscope/" + os.path.relpath(filename, JAXSCOPE_DIR)
    elif "site-packages" in filename:
        filename = filename.split("site-packages" + os.sep, 1)[1]
    return f"{filename}:{line}({name})"


def profile(repeats: int = 20, top: int = 15, depth: int = mlp.DEPTH) -> str:
    """The report as text."""
    spec = mlp.build(depth=depth)
    pure, scoped = spec.impls[0], spec.impls[1]
    x = spec.inputs[0]
    params = pure.init(jax.random.key(0), x)
    calls = spec.n_variables * repeats
    overhead = _overhead(pure, scoped, params, x, repeats)
    alone = _overhead(*_alone(depth, x.shape[-1]), params, x, repeats)

    profiler = cProfile.Profile(time.process_time)
    for _ in range(repeats):
        fn = lambda *a: scoped.apply(*a)  # noqa: E731
        profiler.enable()
        jax.make_jaxpr(fn)(params, x)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # {key: (cc, nc, tottime, cumtime, callers)}

    def rows(keys, sort_index):
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
    own_total = sum(stats[k][2] for k in own)
    lines = [
        f"depth {depth}: {spec.n_variables} variables, {repeats} traces; overhead without "
        f"the profiler: {1e6 * overhead / spec.n_variables:.1f} µs per get_variable "
        "(jaxscope make_jaxpr CPU time minus pure JAX's, per variable)",
        f"the same scopes and get_variable calls alone, without the layers' math traced "
        f"between them: {1e6 * alone / spec.n_variables:.1f} µs per get_variable",
        f"time spent in jaxscope's own code under cProfile: {1e6 * own_total / calls:.1f} µs "
        "per get_variable",
        "",
        "jaxscope functions, by time with callees:",
        *rows(own, 3),
        "",
        "all functions, by own time (JAX's tracing included):",
        *rows(list(stats), 2),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_trace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=20, help="traces to profile")
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    parser.add_argument("--depth", type=int, default=mlp.DEPTH)
    args = parser.parse_args(argv)
    text = profile(args.repeats, args.top, args.depth)
    print(text)
    return text


if __name__ == "__main__":
    main()
