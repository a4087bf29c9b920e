"""What every benchmark script shares: timing, the machine, targets, RESULTS.md.

- :func:`interleave` times several calls with their samples taken round-robin
  (load that comes and goes falls on all of them alike), the garbage
  collector paused during a sample; :func:`fresh` gives a new function
  object per trace so that no JAX cache answers.
- :func:`machine` is the header of a result: CPU, cores, versions, commit,
  load average.
- :func:`targets` reads ``benchmarks/targets.toml``; :func:`verdict` says
  whether a figure meets its target.
- :func:`isolated` runs a measurement in a fresh process, with a timeout.
- :func:`peak_growth` measures a call's peak resident memory growth.
- :func:`compare` measures one model written several ways (trace time,
  eager calls, the compiled train step and whether it is the baseline's XLA
  program).
- :func:`parser` and :func:`finish` give every script the same options and
  write its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
RESULTS = os.path.join(BENCHMARKS, "RESULTS.md")
TARGETS = os.path.join(BENCHMARKS, "targets.toml")

# The sections of RESULTS.md in order: (script, title). A script writes only
# its own section; the others stay as they were.
SECTIONS = (
    ("mlp", "Depth-100 MLP: jaxscope against pure JAX, Flax and Haiku"),
    ("seq2seq", "seq2seq model A: compiled train step and trace"),
    ("sweeps", "Scaling sweeps"),
    ("memory", "Peak host memory of `init`"),
    ("profile_trace", "Where the trace time goes"),
    ("checkpoint_io", "Checkpoint save and restore"),
    ("decode", "Decoding: seq2seq model B with a key/value cache"),
)


# --- timing ------------------------------------------------------------------------


def block(tree: Any) -> Any:
    """Waits for every array in ``tree``: JAX dispatches asynchronously."""
    import jax

    return jax.block_until_ready(tree)


def fresh(fn: Callable) -> Callable:
    """A new function object calling ``fn``: JAX caches traces by function
    identity, and a trace-time sample must trace every time."""
    return lambda *args, **kwargs: fn(*args, **kwargs)


@dataclasses.dataclass
class Samples:
    """Seconds per call of one timed function: wall-clock and this process's
    CPU time (all threads; other load on the machine hardly changes it)."""

    wall: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def interleave(
    calls: dict[Any, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.0,
) -> dict[Any, Samples]:
    """Times argument-less calls, their samples interleaved round-robin.

    Each call runs ``warmup`` times untimed, then ``repeats`` samples are
    taken in rounds, each round starting with a different call. The garbage
    collector is paused during a sample (as ``timeit`` does). A call faster
    than ``min_sample_s`` is looped within a sample, which reports the time
    per call.
    """
    names = list(calls)
    number = {}
    for name in names:
        once = min_sample_s
        for _ in range(warmup):
            start = time.perf_counter()
            calls[name]()
            once = time.perf_counter() - start
        number[name] = 1 if once >= min_sample_s else math.ceil(min_sample_s / max(once, 1e-7))
    out = {name: Samples([], []) for name in names}
    gc.collect()
    for round_ in range(repeats):
        for i in range(len(names)):
            name = names[(round_ + i) % len(names)]
            call, n = calls[name], min(number[name], 1000)
            gc.disable()
            try:
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(n):
                    call()
                out[name].wall.append((time.perf_counter() - wall) / n)
                out[name].cpu.append((time.process_time() - cpu) / n)
            finally:
                gc.enable()
    return out


def isolated(module: str, args: Sequence[str], timeout: float) -> tuple[list[dict], bool]:
    """Runs ``python -m module *args`` in a fresh process and returns the
    JSON objects it printed, one a line, and whether it ran out of time
    (then the lines printed before the timeout)."""
    command = [sys.executable, "-m", module, *args]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    )
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        stdout, timed_out = done.stdout, False
        if done.returncode:
            raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    except subprocess.TimeoutExpired as e:
        stdout, timed_out = e.stdout or "", True
        if isinstance(stdout, bytes):
            stdout = stdout.decode()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines], timed_out


# --- one model written several ways ---------------------------------------------


def _identity(tree: Any) -> Any:
    return tree


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation of a model.

    Attributes:
        label: the column header.
        init: ``init(rng, *inputs) -> params`` in its own layout.
        apply: ``apply(params, *inputs) -> output``, pure, no rng.
        to_common: its params to the baseline's layout.
        from_common: the baseline's params to its layout.
    """

    label: str
    init: Callable[..., Any]
    apply: Callable[..., Any]
    to_common: Callable[[Any], Any] = _identity
    from_common: Callable[[Any], Any] = _identity


# XLA options that make a compile quicker without changing the optimized HLO
# (they act on the code generation after it): for --quick runs.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

FIGURES = {
    "make_jaxpr": "trace: `jax.make_jaxpr(apply)`",
    "lower": "trace: `jax.jit(apply).lower(...)`",
    "init": "`init`, eager",
    "apply": "`apply`, eager",
    "train_step": "train step, compiled (fwd + bwd + Adam)",
}

_METADATA = re.compile(r",?\s*metadata=\{[^{}]*\}")
_STACK_TABLES = re.compile(
    r"^(FileNames|FunctionNames|FileLocations|StackFrames)\n(.+\n)*\n?", re.MULTILINE
)
_DEFINED_NAME = re.compile(r"%([A-Za-z_][\w.\-]*)")
_NAME_TOKEN = re.compile(r"(?<![\w.\-])[A-Za-z_][\w.\-]*")


def normalized_hlo(hlo_text: str) -> str:
    """Optimized HLO without what does not change the program: op metadata
    (source locations, ``jax.named_scope`` names), the tables of source
    locations, the module's name, and instruction and computation names
    (renumbered in order of appearance: they come from the params' paths)."""
    text = _STACK_TABLES.sub("", _METADATA.sub("", hlo_text))
    text = re.sub(r"^HloModule \S+", "HloModule m", text, flags=re.MULTILINE)
    defined = set(_DEFINED_NAME.findall(text))
    renamed: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        token = match.group(0)
        return renamed.setdefault(token, f"v{len(renamed)}") if token in defined else token

    return _NAME_TOKEN.sub(rename, text)


def _shapes(tree: Any) -> Any:
    import jax

    return jax.tree.map(lambda leaf: (tuple(leaf.shape), str(leaf.dtype)), tree)


def _max_abs_diff(a: Any, b: Any) -> float:
    import jax
    import numpy as np

    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def compare(
    impls: dict[str, Impl],
    inputs: tuple,
    target: Any,
    loss: Callable[[Any, Any], Any],
    figures: Sequence[str],
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.05,
    compiler_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measures every implementation on ``figures`` (keys of
    :data:`FIGURES`), the samples of the implementations interleaved figure
    by figure. The first implementation is the baseline: the others run on
    its params, converted to their layouts, so all compute the same thing.
    ``compiler_options`` go to every XLA compile (:data:`QUICK_COMPILE` for
    smoke tests).

    Returns:
        ``{"samples": {figure: {impl: Samples}}, "same_program": {impl:
        bool}, "same_tree": {impl: bool}, "max_abs_diff": {impl: float}}``:
        whether the compiled train step is the baseline's XLA program,
        whether its own ``init`` makes the baseline's variables (converted),
        and the largest difference of its output to the baseline's.
    """
    import jax
    import optax

    rng = jax.random.key(0)
    baseline = next(iter(impls.values()))

    def run_compiled(fn: Callable, *args: Any) -> Any:
        return jax.jit(fn).lower(*args).compile(compiler_options)(*args)

    common = run_compiled(baseline.init, rng, *inputs)
    expected = run_compiled(baseline.apply, common, *inputs)
    optimizer = optax.adam(1e-3)
    calls: dict[str, dict[str, Callable[[], Any]]] = {figure: {} for figure in figures}
    hlo, diff, same_tree = {}, {}, {}
    for name, impl in impls.items():
        params = impl.from_common(common)
        own = jax.eval_shape(lambda impl=impl: impl.to_common(impl.init(rng, *inputs)))
        same_tree[name] = _shapes(own) == _shapes(common)
        diff[name] = _max_abs_diff(run_compiled(impl.apply, params, *inputs), expected)

        def train_step(params, opt_state, impl=impl):
            value, grads = jax.value_and_grad(lambda p: loss(impl.apply(p, *inputs), target))(
                params
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        opt_state = optimizer.init(params)
        step = jax.jit(train_step).lower(params, opt_state).compile(compiler_options)
        hlo[name] = normalized_hlo(step.as_text())
        every = {
            "make_jaxpr": lambda impl=impl, p=params: jax.make_jaxpr(fresh(impl.apply))(p, *inputs),
            "lower": lambda impl=impl, p=params: jax.jit(fresh(impl.apply)).lower(p, *inputs),
            "init": lambda impl=impl: block(impl.init(rng, *inputs)),
            "apply": lambda impl=impl, p=params: block(impl.apply(p, *inputs)),
            "train_step": lambda step=step, p=params, s=opt_state: block(step(p, s)),
        }
        for figure in figures:
            calls[figure][name] = every[figure]
    samples = {
        figure: interleave(by_impl, repeats, warmup, min_sample_s)
        for figure, by_impl in calls.items()
    }
    first = next(iter(impls))
    return {
        "samples": samples,
        "same_program": {name: text == hlo[first] for name, text in hlo.items()},
        "same_tree": same_tree,
        "max_abs_diff": diff,
    }


def compare_figures(result: dict[str, Any]) -> dict[str, Any]:
    """A :func:`compare` result as plain figures (for ``--json``): the
    medians, wall-clock and CPU, and the checks."""
    return {
        "medians": {
            f: {n: {"wall": s.median, "cpu": s.cpu_median} for n, s in by.items()}
            for f, by in result["samples"].items()
        },
        "same_program": result["same_program"],
        "same_tree": result["same_tree"],
        "max_abs_diff": result["max_abs_diff"],
    }


def overhead_us(result: dict[str, Any], figure: str, impl: str, n: int, cpu: bool) -> float:
    """``impl``'s median minus the baseline's on ``figure``, per variable,
    in µs (CPU time or wall-clock)."""
    by_impl = result["samples"][figure]
    base = next(iter(by_impl.values()))
    pick = (lambda s: s.cpu_median) if cpu else (lambda s: s.median)
    return 1e6 * (pick(by_impl[impl]) - pick(base)) / n


def compare_report(result: dict[str, Any], labels: dict[str, str], n_variables: int) -> str:
    """Markdown for a :func:`compare` result: the figures with their ratio to
    the baseline, the overhead per variable of the trace figures, and the
    program and output checks."""
    names = list(labels)
    rows = []
    for figure, by_impl in result["samples"].items():
        base = by_impl[names[0]].median
        rows.append(
            [FIGURES[figure]]
            + [f"{format_time(by_impl[n].median)} ({by_impl[n].median / base:.2f}x)" for n in names]
        )
    lines = [
        f"Median per call; in brackets, the ratio to {labels[names[0]]}'s.",
        "",
        table(["figure", *labels.values()], rows),
    ]
    traces = [f for f in ("make_jaxpr", "lower", "apply") if f in result["samples"]]
    rows = [
        [f"{FIGURES[f]}, {clock}"]
        + [f"{overhead_us(result, f, n, n_variables, clock == 'CPU'):.1f}" for n in names[1:]]
        for clock in ("CPU", "wall")
        for f in traces
    ]
    lines += [
        "",
        f"Overhead per variable over {labels[names[0]]}, in µs: (median minus its median) / "
        f"{n_variables} variables; process CPU time (hardly changed by other load on the "
        "machine) and wall-clock.",
        "",
        table(["figure", *(labels[n] for n in names[1:])], rows),
        "",
        f"Compiled train step is {labels[names[0]]}'s XLA program (optimized HLO, metadata "
        "stripped, names renumbered): "
        + ", ".join(
            f"{labels[n]} {'yes' if result['same_program'][n] else 'no'}" for n in names[1:]
        )
        + ". Outputs on the same params (converted to each layout), max |difference|: "
        + ", ".join(f"{labels[n]} {result['max_abs_diff'][n]:.2g}" for n in names[1:])
        + "; each `init` makes the same variables: "
        + ", ".join(f"{labels[n]} {'yes' if result['same_tree'][n] else 'no'}" for n in names[1:])
        + ".",
    ]
    return "\n".join(lines)


# --- memory ------------------------------------------------------------------------


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_growth(call: Callable[[], Any]) -> tuple[int, Any]:
    """The growth of this process's peak resident memory during ``call()``,
    and what it returned.

    XLA's buffers are invisible to ``tracemalloc``, so this reads the peak
    resident size (``VmHWM``), reset to the current size first through
    ``/proc/self/clear_refs``. The kernel updates the peak lazily, so a call
    that allocates next to nothing can read as a small negative growth:
    reported as 0. Needs Linux.
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_bytes("VmRSS")
    out = call()
    peak = _status_bytes("VmHWM")
    if before is None or peak is None:
        raise OSError("peak_growth needs /proc/self/status (Linux)")
    return max(0, peak - before), out


# --- the machine and the targets ----------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other processes skew timings."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine() -> dict[str, Any]:
    """The machine and software a run measures, and the load when it starts."""
    versions = {}
    for dist in ("jax", "jaxlib", "flax", "dm-haiku", "optax", "orbax-checkpoint", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    import jax

    import jaxscope

    versions["jaxscope"] = jaxscope.__version__
    commit = _git("rev-parse", "--short", "HEAD")
    changed = _git("status", "--porcelain", "--", "jaxscope")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "device": jax.devices()[0].platform,
        "versions": versions,
        "commit": (commit or "unknown") + (" with changes in jaxscope/" if changed else ""),
        "load_start": load_average(),
    }


def targets(script: str) -> dict[str, Any]:
    """The targets of ``script`` from ``benchmarks/targets.toml``."""
    with open(TARGETS, "rb") as f:
        return tomllib.load(f)[script]


def verdict(value: float | None, target: float) -> str:
    """``met`` when ``value`` is at most ``target``."""
    if value is None or math.isnan(value):
        return "not measured"
    return "met" if value <= target else "**missed**"


# --- reporting ----------------------------------------------------------------------


def format_time(seconds: float) -> str:
    """``0.0123`` as ``12.3 ms``."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_bytes(n: float) -> str:
    """``2.01e9`` as ``2.01 GB``."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, the first column left-aligned, the others right."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def parser(script: str, doc: str, repeats: int) -> argparse.ArgumentParser:
    """The options every script has; ``doc`` is its module docstring."""
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{script}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p.add_argument(
        "--repeats", type=int, default=None, help=f"samples per figure (default {repeats})"
    )
    p.add_argument(
        "--results",
        default=RESULTS,
        help="the RESULTS.md whose section this run replaces (default benchmarks/RESULTS.md;"
        " '-' writes none)",
    )
    p.add_argument("--json", help="also write the raw figures to this file")
    return p


def _command(script: str, argv: Sequence[str]) -> str:
    """The command line as recorded: without the options that only say where
    the output goes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--results", "--json"):
            skip = True
        elif not arg.startswith(("--results=", "--json=")):
            kept.append(arg)
    return shlex.join(["python", "-m", f"benchmarks.{script}", *kept])


def _placeholder(script: str, title: str) -> str:
    return f"## {title}\n\nNot run yet: `python -m benchmarks.{script}`.\n"


def _split(text: str) -> dict[str, str]:
    """RESULTS.md's sections by script, from their ``<!-- script -->`` marks."""
    sections = {}
    for script, _ in SECTIONS:
        mark = f"<!-- {script} -->\n"
        start = text.find(mark)
        if start >= 0:
            end = text.find("<!-- ", start + len(mark))
            sections[script] = text[start + len(mark) : end if end >= 0 else len(text)].strip()
    return sections


HEADER = """\
# jaxscope benchmarks

Each section is written by its script, `python -m benchmarks.<script>`
(`--help` says what it measures), with its command, machine and date. Times
are medians of samples whose order is interleaved round-robin between the
things compared, taken in one process run with the garbage collector
paused; ratios compare figures of the same run. The targets are in
[targets.toml](targets.toml).
"""


def write_section(path: str, script: str, body: str) -> None:
    """Replaces ``script``'s section of the RESULTS.md at ``path`` (creating
    the file, with a placeholder for each section not run yet)."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    sections = _split(text)
    sections[script] = body.strip()
    parts = [HEADER]
    for name, title in SECTIONS:
        parts.append(f"<!-- {name} -->\n" + sections.get(name, _placeholder(name, title)).strip())
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts) + "\n")


def finish(
    script: str,
    argv: Sequence[str],
    args: argparse.Namespace,
    info: dict[str, Any],
    start: float,
    body: str,
    raw: dict[str, Any],
) -> dict[str, Any]:
    """Prints the section and writes it to ``args.results`` (and the raw
    figures to ``args.json``); returns everything as one dict."""
    info = dict(info, load_end=load_average(), wall_s=round(time.perf_counter() - start, 1))
    title = dict(SECTIONS)[script]
    command = _command(script, argv)
    versions = ", ".join(f"{name} {v}" for name, v in info["versions"].items())
    section = "\n".join(
        [
            f"## {title}",
            "",
            f"`{command}`: {info['date']}, commit {info['commit']}, {info['wall_s']} s. "
            f"{info['cpu']}, {info['cores']} cores, JAX on {info['device']}, "
            f"Python {info['python']}, {versions}. Load average (1, 5, 15 min) "
            f"{info['load_start']} at the start, {info['load_end']} at the end"
            + (" (`--quick`: tiny sizes, the numbers mean nothing)." if args.quick else "."),
            "",
            body.strip(),
        ]
    )
    print(section)
    if args.results != "-":
        write_section(args.results, script, section)
    result = {"command": command, "machine": info, "section": section, **raw}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, default=str)
    return result
