"""Measuring: timed samples, medians, ratios, the machine, and program identity.

Every figure is a :class:`Measurement`: the samples of repeated runs taken
after warm-up runs, in one process, reported by their median and by the ratio
of that median to a reference (the pure-JAX baseline measured in the same
run, or for memory the parameter bytes).
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import math
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import jax

__all__ = [
    "Config",
    "FamilyResult",
    "Measurement",
    "block",
    "fill_ratios",
    "format_value",
    "load_average",
    "machine_info",
    "normalized_hlo",
    "time_interleaved",
    "time_samples",
]


@dataclasses.dataclass(frozen=True)
class Config:
    """How one benchmark run measures.

    Attributes:
        repeats: timed samples per figure; the figure is their median.
        warmup: untimed runs before the samples (tracing caches, allocators).
        quick: tiny model sizes, for smoke tests; the numbers mean nothing.
        min_sample_s: a sample of a fast function loops it until this much
            time has passed and reports the time per call.
    """

    repeats: int = 10
    warmup: int = 1
    quick: bool = False
    min_sample_s: float = 0.05


@dataclasses.dataclass
class Measurement:
    """One figure for one implementation: samples and what they mean."""

    figure: str
    impl: str
    samples: list[float]
    unit: str = "s"  # "s" or "bytes"
    number: int = 1  # calls per sample (the sample is the time per call)
    ratio: float | None = None  # median / the family's reference for this figure
    cpu_samples: list[float] | None = None  # process CPU seconds per call, all threads

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "impl": self.impl,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples),
            "ratio": self.ratio,
            "number": self.number,
            "samples": self.samples,
            "cpu_samples": self.cpu_samples,
            "cpu_median": statistics.median(self.cpu_samples) if self.cpu_samples else None,
        }


@dataclasses.dataclass
class FamilyResult:
    """What one benchmark family measured, or why it was skipped.

    ``figures`` and ``impls`` are ``(key, label)`` pairs in display order;
    ``checks`` holds JSON-able facts that are not timings (same program,
    numeric agreement, overheads); ``notes`` are Markdown blocks printed
    under the family's table; ``summary`` are one-line findings against the
    targets, gathered at the top of the report.
    """

    name: str
    title: str
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    impls: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    measurements: list[Measurement] = dataclasses.field(default_factory=list)
    ratio_label: str = "pure JAX"
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    summary: list[str] = dataclasses.field(default_factory=list)
    skipped: str | None = None

    def get(self, figure: str, impl: str) -> Measurement | None:
        for m in self.measurements:
            if m.figure == figure and m.impl == impl:
                return m
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "skipped": self.skipped,
            "figures": dict(self.figures),
            "impls": dict(self.impls),
            "ratio_to": self.ratio_label,
            "measurements": [m.to_json() for m in self.measurements],
            "checks": self.checks,
            "notes": self.notes,
            "summary": self.summary,
        }


def block(tree: Any) -> Any:
    """Waits until every array in ``tree`` is computed (JAX dispatches
    asynchronously, so a timing must wait for the result)."""
    return jax.block_until_ready(tree)


def _calls_per_sample(fn: Callable[[], Any], config: Config) -> int:
    """Runs the warm-up calls; returns how many calls one sample makes."""
    once = None
    for _ in range(config.warmup):
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
    if config.min_sample_s <= 0:
        return 1
    if once is None:
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
    if once >= config.min_sample_s:
        return 1
    return min(1000, math.ceil(config.min_sample_s / max(once, 1e-7)))


def time_interleaved(
    fns: dict[str, Callable[[], Any]], config: Config
) -> dict[str, tuple[list[float], int, list[float]]]:
    """Times several functions with their samples interleaved, so that load
    that comes and goes on the machine falls on all of them alike.

    Each function gets ``config.warmup`` untimed calls, then
    ``config.repeats`` samples taken round-robin (starting with a different
    function each round), with the garbage collector paused during a sample
    (as ``timeit`` does; a full collection runs first, except with
    ``--quick``). A sample of a call faster than ``config.min_sample_s``
    loops it and reports the time per call.

    Returns:
        ``{name: (wall-clock seconds per call, calls per sample, CPU seconds
        of this process per call)}``. The figures are wall-clock; the CPU
        time (all threads) is kept because other processes on a shared
        machine inflate wall-clock time but hardly the CPU time of Python
        tracing.
    """
    names = list(fns)
    number = {name: _calls_per_sample(fns[name], config) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    cpu_samples: dict[str, list[float]] = {name: [] for name in names}
    if not config.quick:
        gc.collect()
    for round_ in range(config.repeats):
        for i in range(len(names)):
            name = names[(round_ + i) % len(names)]
            fn, n = fns[name], number[name]
            gc.disable()
            try:
                cpu_start = time.process_time()
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                samples[name].append((time.perf_counter() - start) / n)
                cpu_samples[name].append((time.process_time() - cpu_start) / n)
            finally:
                gc.enable()
    return {name: (samples[name], number[name], cpu_samples[name]) for name in names}


def time_samples(fn: Callable[[], Any], config: Config) -> tuple[list[float], int, list[float]]:
    """:func:`time_interleaved` of one function."""
    return time_interleaved({"fn": fn}, config)["fn"]


def format_value(value: float, unit: str) -> str:
    """``0.0123, "s"`` as ``12.3 ms``; bytes as kB, MB or GB."""
    if unit == "bytes":
        for scale, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value:.0f} B"
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {name}"
    return f"{value * 1e9:.3g} ns"


def fill_ratios(measurements: list[Measurement], baseline: str) -> None:
    """Sets each measurement's ratio to its median over the ``baseline``
    implementation's median for the same figure."""
    reference = {m.figure: m.median for m in measurements if m.impl == baseline}
    for m in measurements:
        base = reference.get(m.figure)
        m.ratio = m.median / base if base else None


_METADATA = re.compile(r",?\s*metadata=\{[^{}]*\}")
_MODULE_NAME = re.compile(r"^HloModule \S+", re.MULTILINE)
# Instruction and computation names: defined as ``%name``, and used as
# ``%name`` or, in a computation's signature, bare.
_DEFINED_NAME = re.compile(r"%([A-Za-z_][\w.\-]*)")
_NAME_TOKEN = re.compile(r"(?<![\w.\-])[A-Za-z_][\w.\-]*")
# The tables of Python source locations that op metadata points into.
_STACK_TABLES = re.compile(
    r"^(FileNames|FunctionNames|FileLocations|StackFrames)\n(.+\n)*\n?", re.MULTILINE
)


def normalized_hlo(hlo_text: str) -> str:
    """Optimized HLO without what does not change the program: op metadata
    (source locations and ``jax.named_scope`` names), the tables of source
    locations, the module's name, and the names of instructions and
    computations (renumbered in order of appearance: parameter names come
    from the params tree's paths, which differ between frameworks)."""
    text = _STACK_TABLES.sub("", _METADATA.sub("", hlo_text))
    text = _MODULE_NAME.sub("HloModule m", text)
    defined = set(_DEFINED_NAME.findall(text))
    renamed: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        token = match.group(0)
        if token not in defined:
            return token
        return renamed.setdefault(token, f"v{len(renamed)}")

    return _NAME_TOKEN.sub(rename, text)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(root: str, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit(root: str) -> str | None:
    out = _git(root, "rev-parse", "--short", "HEAD")
    return (out.stdout.strip() or None) if out is not None else None


def _jaxscope_changes(root: str) -> bool | None:
    """Whether jaxscope/ has uncommitted changes (the figures then measure
    more than the commit says)."""
    out = _git(root, "status", "--porcelain", "--", "jaxscope")
    if out is None or out.returncode != 0:
        return None
    return bool(out.stdout.strip())


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other processes skew timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(root: str) -> dict[str, Any]:
    """The machine and software a run measured: CPU, cores, versions, date,
    the git commit and the load average when the run started."""
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": f"{device.platform} ({device.device_kind})",
        "versions": {
            name: _version(name)
            for name in ("jax", "jaxlib", "flax", "dm-haiku", "optax", "numpy", "jaxscope")
        },
        "git_commit": _git_commit(root),
        "jaxscope_uncommitted_changes": _jaxscope_changes(root),
        "load_average_at_start": load_average(),
    }
