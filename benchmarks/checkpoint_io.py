"""Saving and restoring a 500M-parameter params tree: js.checkpoint versus orbax.

    python -m benchmarks.checkpoint_io                  # the full run (see --help)
    python -m benchmarks.checkpoint_io --quick          # tiny sizes, a smoke test

The tree is the memory probe's model: an MLP of depth 30 and width 4096
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

Every sample runs in a fresh process, so that its peak resident memory is
its own: the figure is the peak resident size during the call minus the
resident size before it (``VmHWM`` after a reset, minus ``VmRSS``: see
:mod:`benchmarks.memory_probe`). ``tracemalloc`` is not used: it does not
see the buffers of XLA and tensorstore. Samples of the ways are interleaved
(round by round, the order rotating), each restore reads the checkpoint its
way has just saved, and each figure is the median over the rounds, compared
with orbax's median. Checkpoints go to ``--dir`` (default: a temporary
directory) and are deleted after each round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYS = ("orbax", "jaxscope")
UNCOMMITTED, UNVERIFIED = "jaxscope, eval_shape template", "jaxscope, verify=False"
RESTORES = (*WAYS, UNCOMMITTED, UNVERIFIED)
TARGET = 1.10
FIELDS = {"seconds": ("time", "s"), "cpu_seconds": ("CPU time", "s")}
FIELDS["peak_growth_bytes"] = ("peak memory", "bytes")
SECTION = "## Checkpoint save and restore"


# --- one sample, in its own process ----------------------------------------------


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
    return {
        f"layer_{i}": {
            "kernel": jax.ShapeDtypeStruct((width, width), jnp.float32, sharding=sharding),
            "bias": jax.ShapeDtypeStruct((width,), jnp.float32, sharding=sharding),
        }
        for i in range(depth)
    }


def _orbax_manager(directory: str) -> Any:
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
    return ocp.CheckpointManager(directory, options=options)


def _sample(op: str, way: str, directory: str, depth: int, width: int) -> dict:
    """Times one save or restore and measures its peak memory growth."""
    import jax
    import orbax.checkpoint as ocp

    import jaxscope as js
    from benchmarks.memory_probe import _peak_bytes, _start_mode

    if op == "save":
        tree = jax.block_until_ready(_tree(depth, width))
        if way == "orbax":

            def call():
                with _orbax_manager(directory) as manager:
                    return manager.save(1, args=ocp.args.StandardSave(tree))

        else:
            call = lambda: js.checkpoint.save(directory, 1, tree)  # noqa: E731
    else:
        abstract = _abstract(depth, width, sharded=way != UNCOMMITTED)
        if way == "orbax":

            def call():
                with _orbax_manager(directory) as manager:
                    return manager.restore(1, args=ocp.args.StandardRestore(abstract))

        else:
            verify = way != UNVERIFIED
            call = lambda: js.checkpoint.restore(directory, 1, like=abstract, verify=verify)  # noqa: E731
    before, method = _start_mode()
    cpu, start = os.times(), time.perf_counter()
    out = jax.block_until_ready(call())
    seconds = time.perf_counter() - start
    peak, cpu_end = _peak_bytes(), os.times()
    cpu_seconds = cpu_end.user - cpu.user + cpu_end.system - cpu.system
    if op == "restore":
        assert sum(x.size for x in jax.tree.leaves(out)) == depth * (width + 1) * width
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_growth_bytes": peak - before,
        "memory_method": method,
    }


def _run_sample(op: str, way: str, directory: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.checkpoint_io",
        "--sample",
        op,
        "--way",
        way,
        "--dir",
        directory,
        "--depth",
        str(args.depth),
        "--width",
        str(args.width),
    ]
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{op} with {way} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    """All rounds, interleaved; returns the samples and their medians."""
    from benchmarks.harness import load_average, machine_info

    base = args.dir or tempfile.mkdtemp(prefix="checkpoint_io_")
    samples: dict[str, dict[str, list[dict]]] = {
        "save": {w: [] for w in WAYS},
        "restore": {w: [] for w in RESTORES},
    }
    info = machine_info(ROOT)
    info["versions"]["orbax-checkpoint"] = metadata.version("orbax-checkpoint")
    for round_ in range(args.repeats):
        shift = round_ % len(WAYS)
        for way in WAYS[shift:] + WAYS[:shift]:
            directory = os.path.join(base, f"{way}_{round_}")
            samples["save"][way].append(_run_sample("save", way, directory, args))
            restores = [r for r in RESTORES if r.startswith(way)]
            for restore in restores:
                samples["restore"][restore].append(_run_sample("restore", restore, directory, args))
            shutil.rmtree(directory, ignore_errors=True)
        print(f"round {round_ + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    info["load_average_at_end"] = load_average()
    medians = {
        op: {
            way: {field: statistics.median(s[field] for s in runs) for field in FIELDS}
            for way, runs in by_way.items()
        }
        for op, by_way in samples.items()
    }
    params = args.depth * (args.width + 1) * args.width
    return {
        "command": _command(args.argv),
        "machine": info,
        "params": params,
        "param_bytes": 4 * params,
        "repeats": args.repeats,
        "samples": samples,
        "medians": medians,
    }


def _command(argv: list[str]) -> str:
    """The command line as recorded: without the options that only say where
    the output goes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json", "--dir"):
            skip = True
        elif arg != "--write-results" and not arg.startswith(("--json=", "--dir=")):
            kept.append(arg)
    return " ".join(["python -m benchmarks.checkpoint_io", *kept])


def report(result: dict) -> str:
    """The Markdown section for RESULTS.md."""
    from benchmarks.harness import format_value

    m, medians = result["machine"], result["medians"]
    lines = [
        f"{SECTION} ({result['params'] / 1e6:.1f}M float32 parameters, "
        f"{format_value(result['param_bytes'], 'bytes')})",
        "",
        f"Produced by `{result['command']}` on {m['date']} at commit `{m['git_commit']}`"
        + (" (with uncommitted changes)" if m.get("jaxscope_uncommitted_changes") else "")
        + ".",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; "
        f"load average (1, 5, 15 min) {m['load_average_at_start']} at the start, "
        f"{m['load_average_at_end']} at the end. Checkpoints on the local disk (`/tmp`).",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        f"- Method: the median of {result['repeats']} samples of each way, interleaved; every "
        "sample in a fresh process; time is wall-clock of the call, CPU time the process's "
        "user and system time during it, all threads (less sensitive to other load on the "
        "machine), memory the peak resident growth during it (VmHWM after a reset, minus "
        "VmRSS). In brackets: the ratio to orbax's median.",
        "",
        "| figure | orbax | jaxscope | jaxscope, `eval_shape` template | jaxscope, `verify=False` |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in ("save", "restore"):
        for field, (label, unit) in FIELDS.items():
            base = medians[op]["orbax"][field]
            cells = []
            for way in RESTORES:
                if way not in medians[op]:
                    cells.append("")
                    continue
                value = medians[op][way][field]
                cells.append(f"{format_value(value, unit)} ({value / base:.2f}x)")
            lines.append(f"| {op}: {label} | " + " | ".join(cells) + " |")
    verdicts = []
    for op in ("save", "restore"):
        for field in ("seconds", "peak_growth_bytes"):
            ratio = medians[op]["jaxscope"][field] / medians[op]["orbax"][field]
            verdict = "met" if ratio <= TARGET else "**missed**"
            verdicts.append(f"{op} {FIELDS[field][0]} {ratio:.2f}x ({verdict})")
    lines += [
        "",
        f"Against the target (jaxscope as it comes, at most {TARGET:.2f}x orbax's median): "
        + ", ".join(verdicts)
        + ".",
    ]
    lines += [
        "",
        "orbax: `CheckpointManager.save(step, args=StandardSave(tree))` (synchronous) and "
        "`restore(step, args=StandardRestore(abstract))`, the abstract tree carrying each "
        "array's sharding. jaxscope: `js.checkpoint.save` and `js.checkpoint.restore(like="
        "abstract)` with the same tree and template, checksums written and verified. "
        "`eval_shape` template: `like` without shardings, so the arrays come back "
        "uncommitted (as `jnp.asarray` makes them), at the cost of a host copy per array. "
        "`verify=False`: the restore without comparing checksums.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: str, section: str) -> None:
    """Puts ``section`` into RESULTS.md in place of the previous one (or at
    the end)."""
    text = open(path).read() if os.path.exists(path) else ""
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checkpoint_io",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=5, help="rounds (samples per way)")
    parser.add_argument("--depth", type=int, default=30, help="layers of the MLP (default 30)")
    parser.add_argument("--width", type=int, default=4096, help="width of the MLP (default 4096)")
    parser.add_argument("--quick", action="store_true", help="depth 2, width 64, 1 round")
    parser.add_argument("--dir", help="where checkpoints are written (default: a temporary dir)")
    parser.add_argument("--json", help="also write the samples and medians to this file")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="put the table into benchmarks/RESULTS.md (replacing its previous one)",
    )
    parser.add_argument("--sample", choices=("save", "restore"), help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=RESTORES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.sample:
        print(json.dumps(_sample(args.sample, args.way, args.dir, args.depth, args.width)))
        return None
    if args.quick:
        args.depth, args.width, args.repeats = 2, 64, 1
    result = run(args)
    section = report(result)
    print(section)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.write_results:
        write_section(os.path.join(ROOT, "benchmarks", "RESULTS.md"), section)
    return result


if __name__ == "__main__":
    main()
