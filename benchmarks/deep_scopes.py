"""How the time per scope of ``init`` grows with the nesting depth.

    python -m benchmarks.deep_scopes --depths 100 1000 --repeats 5

The model opens ``depth`` variable scopes, each inside the previous one
(``s0/s1/.../s<depth-1>``), and creates one variable in each, so a variable's
name has up to ``depth`` components. For each depth it measures ``init``
eager and ``init`` traced (``jax.make_jaxpr``), as process CPU time per
scope, samples of the depths interleaved, and prints the median per scope
and its ratio to the first depth's. Bookkeeping linear in a name's length
keeps the ratio near 1 (issue 13: depth 1,000 within 3x of depth 100 per
scope); one that rebuilds every prefix of every name grows with the depth.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import jaxscope as js


def nested(depth: int):
    """A model of ``depth`` nested scopes with a variable in each."""

    def model(x):
        with contextlib.ExitStack() as scopes:
            for i in range(depth):
                scopes.enter_context(js.variable_scope(f"s{i}"))
                x = x + js.get_variable("b", [4], initializer=js.initializers.zeros)
        return x

    return js.transform(model)


def _cpu(call) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def measure(depths: list[int], repeats: int) -> dict[str, dict[int, float]]:
    """Median CPU seconds per scope, by figure and depth."""
    x = jnp.zeros(4)
    figures = {
        "init, eager": lambda f: jax.block_until_ready(f.init(0, x)),
        "init, traced (make_jaxpr)": lambda f: jax.make_jaxpr(f.init)(0, x),
    }
    samples = {name: {d: [] for d in depths} for name in figures}
    for round_ in range(repeats + 1):  # round 0 warms up
        order = depths if round_ % 2 else depths[::-1]
        for name, run in figures.items():
            for depth in order:
                f = nested(depth)  # a fresh function each time: no trace cache answers
                seconds = _cpu(lambda f=f, run=run: run(f))
                if round_:
                    samples[name][depth].append(seconds / depth)
    return {
        name: {d: statistics.median(s) for d, s in by_depth.items()}
        for name, by_depth in samples.items()
    }


def report(results: dict[str, dict[int, float]]) -> str:
    lines = []
    for name, by_depth in results.items():
        base_depth, base = next(iter(by_depth.items()))
        cells = [
            f"depth {d}: {1e6 * t:.1f} µs/scope ({t / base:.2f}x depth {base_depth})"
            for d, t in by_depth.items()
        ]
        lines.append(f"{name}: " + "; ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.deep_scopes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--depths", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=5, help="samples per depth and figure")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * max(args.depths)))
    text = report(measure(args.depths, args.repeats))
    print(text)
    return text


if __name__ == "__main__":
    main()
