"""Saving and restoring a 500M-parameter params tree: js.checkpoint against orbax.

    python -m benchmarks.checkpoint_io             # depth 30, width 4096: 2 GB, 5 rounds
    python -m benchmarks.checkpoint_io --quick     # depth 2, width 64, 1 round: a smoke test

The tree is ``benchmarks.memory``'s model: an MLP of depth 30 and width 4096
(``layer_{i}/kernel`` of 4096 x 4096 and ``layer_{i}/bias``), 503M float32
parameters, 2.01 GB, filled with random values (orbax compresses, so
constant arrays would flatter both). These ways are measured:

- ``orbax``: ``ocp.CheckpointManager(...).save(step,
  args=ocp.args.StandardSave(tree))``, synchronous, and ``restore`` with
  ``StandardRestore`` of the abstract tree (each leaf's shape, dtype and
  sharding), as orbax's documentation does it;
- ``jaxscope``: ``js.checkpoint.save(directory, step, tree)`` and
  ``js.checkpoint.restore(directory, like=abstract)`` with the same abstract
  tree (checksums on, as by default);
- ``jaxscope, eval_shape template``: the restore of ``like=jax.eval_shape(...)``
  (no sharding: the arrays come back uncommitted, as ``jnp.asarray`` makes
  them, which costs a copy per array on the host);
- ``jaxscope, verify=False``: the restore without the checksums, to show
  what verifying every byte costs.

Every sample runs in a fresh process on the host (``JAX_PLATFORMS=cpu``
unless set), so that its peak resident memory is its own: the figure is the
growth of the peak resident size during the call (``harness.peak_growth``;
``tracemalloc`` does not see the buffers of XLA and tensorstore), beside the
call's wall-clock and CPU time (all threads). The ways take turns round by
round, the order rotating; each restore reads the checkpoint its way has
just saved; each figure is the median over the rounds, compared with
orbax's. ``--quick`` takes its samples in this process. Checkpoints go to
``--dir`` (default: a temporary directory) and are deleted after each round.
Needs Linux. Targets: ``benchmarks/targets.toml``, ``[checkpoint_io]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks import harness

DEPTH, WIDTH, QUICK_DEPTH, QUICK_WIDTH = 30, 4096, 2, 64
REPEATS = 5
WAYS = ("orbax", "jaxscope")
UNCOMMITTED, UNVERIFIED = "jaxscope, eval_shape template", "jaxscope, verify=False"
RESTORES = (*WAYS, UNCOMMITTED, UNVERIFIED)
FIELDS = {"seconds": "time", "cpu_seconds": "CPU time", "peak_growth_bytes": "peak memory"}
# The figures judged against targets.toml: (operation, field) -> target key.
JUDGED = {
    ("save", "seconds"): "save_time_over_orbax",
    ("save", "peak_growth_bytes"): "save_peak_memory_over_orbax",
    ("restore", "seconds"): "restore_time_over_orbax",
    ("restore", "peak_growth_bytes"): "restore_peak_memory_over_orbax",
}


# --- one sample ------------------------------------------------------------------


def _tree(depth: int, width: int) -> dict:
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        f"layer_{i}": {
            "kernel": jnp.asarray(rng.random((width, width), dtype=np.float32)),
            "bias": jnp.asarray(rng.random(width, dtype=np.float32)),
        }
        for i in range(depth)
    }


def _abstract(depth: int, width: int, sharded: bool) -> dict:
    import jax
    import jax.numpy as jnp

    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0]) if sharded else None
    leaf = {"kernel": (width, width), "bias": (width,)}
    return {
        f"layer_{i}": {
            name: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding)
            for name, shape in leaf.items()
        }
        for i in range(depth)
    }


def _call(op: str, way: str, directory: str, depth: int, width: int) -> Any:
    """The argument-less save or restore of ``way``."""
    import orbax.checkpoint as ocp

    import jaxscope as js

    def orbax(method: str, args: Any) -> Any:
        options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
        with ocp.CheckpointManager(directory, options=options) as manager:
            return getattr(manager, method)(1, args=args)

    if op == "save":
        tree = harness.block(_tree(depth, width))
        if way == "orbax":
            return lambda: orbax("save", ocp.args.StandardSave(tree))
        return lambda: js.checkpoint.save(directory, 1, tree)
    abstract = _abstract(depth, width, sharded=way != UNCOMMITTED)
    if way == "orbax":
        return lambda: orbax("restore", ocp.args.StandardRestore(abstract))
    verify = way != UNVERIFIED
    return lambda: js.checkpoint.restore(directory, 1, like=abstract, verify=verify)


def sample(op: str, way: str, directory: str, depth: int, width: int) -> dict[str, float]:
    """Times one save or restore and measures its peak memory growth."""
    import jax

    call = _call(op, way, directory, depth, width)
    cpu, wall = time.process_time(), time.perf_counter()
    growth, out = harness.peak_growth(lambda: harness.block(call()))
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    if op == "restore" and sum(x.size for x in jax.tree.leaves(out)) != depth * (width + 1) * width:
        raise AssertionError(f"{way} restored the wrong number of parameters")
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_growth_bytes": growth}


def fresh_sample(op: str, way: str, directory: str, depth: int, width: int) -> dict[str, float]:
    """:func:`sample` in a fresh process, whose peak memory is the sample's own."""
    args = ["--sample", op, way, directory, str(depth), str(width)]
    records, timed_out = harness.isolated("benchmarks.checkpoint_io", args, timeout=600)
    if timed_out or len(records) != 1:
        raise RuntimeError(f"the {op} with {way} gave no figures in 600 s")
    return records[0]


# --- the run ------------------------------------------------------------------------


def rounds(
    depth: int, width: int, repeats: int, base: str, in_process: bool
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Every way's save and restores, round by round, the order rotating:
    ``{op: {way: [sample, ...]}}``."""
    samples: dict[str, dict[str, list]] = {
        "save": {w: [] for w in WAYS},
        "restore": {w: [] for w in RESTORES},
    }

    def take(op: str, way: str, directory: str) -> dict[str, float]:
        return (sample if in_process else fresh_sample)(op, way, directory, depth, width)

    for round_ in range(repeats):
        shift = round_ % len(WAYS)
        for way in WAYS[shift:] + WAYS[:shift]:
            directory = os.path.join(base, f"{way}_{round_}")
            samples["save"][way].append(take("save", way, directory))
            for restore in (r for r in RESTORES if r.startswith(way)):
                samples["restore"][restore].append(take("restore", restore, directory))
            shutil.rmtree(directory, ignore_errors=True)
        print(f"[checkpoint_io] round {round_ + 1}/{repeats} done", file=sys.stderr, flush=True)
    return samples


def _format(value: float, field: str) -> str:
    return harness.format_bytes(value) if field == "peak_growth_bytes" else f"{value:.3g} s"


def _ratio(value: float, base: float) -> float:
    """``value / base``; NaN where the base is zero (a tiny run's memory)."""
    return value / base if base > 0 else math.nan


def report(medians: dict[str, dict[str, dict[str, float]]]) -> tuple[list[str], str, dict]:
    """The verdict lines, the table and the figures judged."""
    targets = harness.targets("checkpoint_io")
    lines, figures = [], {}
    for (op, field), key in JUDGED.items():
        ratio = _ratio(medians[op]["jaxscope"][field], medians[op]["orbax"][field])
        figures[key] = ratio
        lines.append(
            f"jaxscope's {op} {FIELDS[field]} over orbax's: {ratio:.2f}x; target at most "
            f"{targets[key]}x: {harness.verdict(ratio, targets[key])}"
        )
    rows = []
    for op in ("save", "restore"):
        for field, label in FIELDS.items():
            base = medians[op]["orbax"][field]
            cells = [
                f"{_format(medians[op][way][field], field)} ({_ratio(medians[op][way][field], base):.2f}x)"
                if way in medians[op]
                else ""
                for way in RESTORES
            ]
            rows.append([f"{op}: {label}", *cells])
    header = ["figure", "orbax", "jaxscope", "jaxscope, `eval_shape` template"]
    table = harness.table([*header, "jaxscope, `verify=False`"], rows)
    return lines, table, figures


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Runs the benchmark; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("checkpoint_io", __doc__, REPEATS)
    parser.add_argument("--dir", help="where checkpoints are written (default: a temporary dir)")
    parser.add_argument("--sample", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sample or not args.quick:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before JAX starts in this process
    if args.sample:
        op, way, directory, depth, width = args.sample
        print(json.dumps(sample(op, way, directory, int(depth), int(width))))
        return None
    depth, width = (QUICK_DEPTH, QUICK_WIDTH) if args.quick else (DEPTH, WIDTH)
    repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    base = args.dir or tempfile.mkdtemp(prefix="checkpoint_io_")
    try:
        samples = rounds(depth, width, repeats, base, in_process=args.quick)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    medians = {
        op: {
            way: {f: statistics.median(s[f] for s in runs) for f in FIELDS}
            for way, runs in by.items()
        }
        for op, by in samples.items()
    }
    lines, table, figures = report(medians)
    params = depth * (width + 1) * width
    body = "\n".join(
        [
            f"MLP depth {depth}, width {width}: {params:,} float32 parameters, "
            f"{harness.format_bytes(4 * params)}. The median of {repeats} samples of each way, "
            "interleaved, each in a fresh process (`--quick`: in this one); time is the call's "
            "wall-clock, CPU time the process's during it (all threads; other load on the "
            "machine hardly changes it), memory the growth of the peak resident size. In "
            "brackets: the ratio to orbax's median. Checkpoints on the local disk.",
            "",
            "Against the targets (`targets.toml`, `[checkpoint_io]`):",
            "",
            *(f"- {line}" for line in lines),
            "",
            table,
            "",
            "orbax: `CheckpointManager.save(step, args=StandardSave(tree))` (synchronous) and "
            "`restore(step, args=StandardRestore(abstract))`, the abstract tree carrying each "
            "array's sharding. jaxscope: `js.checkpoint.save` and `js.checkpoint.restore(like="
            "abstract)` with the same tree and template, checksums written and verified. "
            "`eval_shape` template: `like` without shardings, so the arrays come back "
            "uncommitted (as `jnp.asarray` makes them), at the cost of a host copy per array. "
            "`verify=False`: the restore without comparing checksums.",
        ]
    )
    raw = {"targets": figures, "medians": medians, "samples": samples, "param_bytes": 4 * params}
    return harness.finish("checkpoint_io", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
