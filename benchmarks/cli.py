"""The command line: ``python -m benchmarks``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any

from benchmarks import report
from benchmarks.families import FAMILIES, family_names
from benchmarks.harness import Config, FamilyResult, load_average, machine_info

__all__ = ["main"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PACKAGE_DIR)

DESCRIPTION = """\
Benchmarks jaxscope against hand-written pure JAX, flax.linen, flax.core and
Haiku: trace time, init, eager apply, compiled train step, compile time of
layer_stack versus unrolled, and peak memory of init. Prints a table and
writes RESULTS.md and results.json (raw samples) to --out.

    python -m benchmarks                 # the full run, about 3 minutes on an idle 2-core CPU
    python -m benchmarks --quick         # tiny sizes, a smoke test
    python -m benchmarks --only mlp --repeats 20
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed samples per figure (default 10; 2 with --quick)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the samples")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (a smoke test; the numbers mean nothing)"
    )
    parser.add_argument(
        "--only",
        default=",".join(family_names()),
        help=f"comma-separated families to run (default all: {','.join(family_names())})",
    )
    parser.add_argument(
        "--out",
        default=PACKAGE_DIR,
        help="directory for RESULTS.md and results.json (default: benchmarks/)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmarks; returns what results.json holds."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(family_names())
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {family_names()}")
    repeats = args.repeats or (2 if args.quick else 10)
    if repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be at least 1 and --warmup at least 0")
    config = Config(
        repeats=repeats,
        warmup=args.warmup,
        quick=args.quick,
        min_sample_s=0.0 if args.quick else Config.min_sample_s,
    )
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    machine = machine_info(ROOT)

    results: list[FamilyResult] = []
    run_start = time.perf_counter()
    for family in FAMILIES:
        if family.name not in chosen:
            continue
        reason = family.unavailable()
        start = time.perf_counter()
        if reason is not None:
            result = FamilyResult(family.name, family.title, skipped=reason)
        else:
            print(f"[benchmarks] {family.name} ...", file=sys.stderr, flush=True)
            result = family.run(config)
        result.checks.setdefault("wall_s", time.perf_counter() - start)
        results.append(result)

    machine["load_average_at_end"] = load_average()
    machine["wall_s"] = round(time.perf_counter() - run_start, 1)
    text = report.markdown(command, machine, config, results)
    data = report.to_json(command, machine, config, results)
    print(text)
    if not args.no_write:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
    return data
