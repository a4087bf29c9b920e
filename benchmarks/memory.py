"""Peak host memory of ``init`` for a model of 500M parameters.

    python -m benchmarks.memory             # MLP depth 30, width 4096: 2 GB of parameters
    python -m benchmarks.memory --quick     # depth 2, width 256: a smoke test

An MLP of depth 30 and width 4096 (``benchmarks.mlp``'s, 503M float32
parameters, 2.01 GB) is initialised by jaxscope and, for reference, by pure
JAX, eagerly and jitted, each in a fresh process (with ``--quick``, one
process runs them all). Each figure is the growth of the
process's peak resident memory during the call (``VmHWM`` reset first,
minus ``VmRSS``; XLA's buffers are invisible to ``tracemalloc``), after
imports and a warm-up on a tiny model; ``jax.eval_shape(f.init)`` is
measured first in every process and must allocate no parameter memory.
Memory is deterministic up to allocator noise: one sample per figure.
Needs Linux. Targets: ``benchmarks/targets.toml``, ``[memory]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import harness, mlp

DEPTH, WIDTH = 30, 4096
QUICK_DEPTH, QUICK_WIDTH = 2, 256
IMPLS = {"jaxscope": "jaxscope", "pure_jax": "pure JAX"}
MODES = {
    "eval_shape": "`jax.eval_shape(init)`",
    "eager": "`init`, eager",
    "jit": "`init`, jitted (compile included)",
}
# eval_shape "allocates no parameter memory" when its peak grows by less
# than this, or less than 1% of the parameter bytes.
ALLOCATOR_NOISE_BYTES = 4 << 20


def probe(impls: list[str], modes: list[str], depth: int, width: int) -> None:
    """Prints one JSON line per implementation and mode: the peak growth of
    its init (``eval_shape`` first)."""
    for impl in impls:
        for mode, growth, size in _probe_one(impl, modes, depth, width):
            print(json.dumps({"impl": impl, "mode": mode, "growth": growth, "param_bytes": size}))


def _probe_one(impl: str, modes: list[str], depth: int, width: int) -> list[tuple]:
    rng = jax.random.key(0)
    make = getattr(mlp, impl)
    tiny, x_tiny = make(2, 8), jnp.ones((1, 8), jnp.float32)
    jax.eval_shape(tiny.init, rng, x_tiny)  # first-use costs of JAX and XLA
    harness.block(tiny.init(rng, x_tiny))
    harness.block(jax.jit(tiny.init)(rng, x_tiny))
    model, x = make(depth, width), jnp.ones((1, width), jnp.float32)
    run = {
        "eval_shape": lambda: jax.eval_shape(harness.fresh(model.init), rng, x),
        "eager": lambda: harness.block(model.init(rng, x)),
        "jit": lambda: harness.block(jax.jit(model.init)(rng, x)),
    }
    out = []
    for mode in ["eval_shape", *modes]:
        growth, params = harness.peak_growth(run[mode])
        size = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(params))
        out.append((mode, growth, size))
        del params
    return out


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Runs the probes one after the other; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("memory", __doc__, 1)
    parser.add_argument("--probe", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        impls, modes, depth, width = args.probe
        probe(impls.split(","), modes.split(","), int(depth), int(width))
        return None
    depth, width = (QUICK_DEPTH, QUICK_WIDTH) if args.quick else (DEPTH, WIDTH)
    start, info = time.perf_counter(), harness.machine()
    # (implementations, modes) per process; --quick runs all in one process.
    plan = [(impl, modes) for impl in IMPLS for modes in ("eager", "jit")]
    if args.quick:
        plan = [(",".join(IMPLS), "eager,jit")]
    growth, param_bytes = {}, 0
    for impls, modes in plan:
        probe_args = ["--probe", impls, modes, str(depth), str(width)]
        records, _ = harness.isolated("benchmarks.memory", probe_args, timeout=600)
        for r in records:  # eval_shape is measured in every process: keep the largest
            key = (r["impl"], r["mode"])
            growth[key] = max(growth.get(key, r["growth"]), r["growth"])
            param_bytes = max(param_bytes, r["param_bytes"])
    target = harness.targets("memory")["eager_init_over_param_bytes"]
    eager = growth["jaxscope", "eager"] / param_bytes
    eval_shape = growth["jaxscope", "eval_shape"]
    no_memory = eval_shape <= max(ALLOCATOR_NOISE_BYTES, 0.01 * param_bytes)
    rows = [
        [label]
        + [
            f"{harness.format_bytes(growth[i, mode])} ({growth[i, mode] / param_bytes:.2f}x)"
            for i in IMPLS
        ]
        for mode, label in MODES.items()
    ]
    body = "\n".join(
        [
            f"MLP depth {depth}, width {width}: {param_bytes // 4 / 1e6:.1f}M float32 parameters, "
            f"{harness.format_bytes(param_bytes)}. Peak resident growth; in brackets, the ratio "
            "to the parameter bytes.",
            "",
            f"- jaxscope's eager `init`: {eager:.2f}x the parameter bytes; target at most "
            f"{target}x: {harness.verdict(eager, target)}",
            f"- `jax.eval_shape(init)`: {harness.format_bytes(eval_shape)}, "
            + ("no parameter memory: met" if no_memory else "**allocates parameter memory**"),
            "",
            harness.table(["figure", *IMPLS.values()], rows),
            "",
            "What eager `init` holds beyond the parameters is the random-number generation of "
            "one layer: JAX's threefry keeps a few buffers of the variable's size while it "
            "runs, so the largest variable, not the scoping, sets it; pure JAX pays the same.",
        ]
    )
    raw = {
        "growth_bytes": {f"{i} {m}": v for (i, m), v in growth.items()},
        "param_bytes": param_bytes,
        "eager_init_over_param_bytes": eager,
        "eval_shape_allocates_no_parameter_memory": no_memory,
    }
    return harness.finish("memory", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
