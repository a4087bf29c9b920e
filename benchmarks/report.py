"""Results as Markdown (``RESULTS.md``, also printed) and as JSON."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Config, FamilyResult, format_value

__all__ = ["markdown", "to_json"]


def _table(result: FamilyResult) -> list[str]:
    lines = [
        "| figure | " + " | ".join(label for _, label in result.impls) + " |",
        "|---|" + "---:|" * len(result.impls),
    ]
    for figure, label in result.figures:
        cells = []
        for impl, _ in result.impls:
            m = result.get(figure, impl)
            if m is None:
                cells.append("—")
                continue
            cell = format_value(m.median, m.unit)
            if m.ratio is not None:
                cell += f" ({m.ratio:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _family(result: FamilyResult) -> list[str]:
    lines = [f"## {result.title}", ""]
    if result.skipped:
        return [*lines, f"Skipped: {result.skipped}.", ""]
    lines += [f"In brackets: the ratio to {result.ratio_label}.", ""]
    lines += _table(result)
    for note in result.notes:
        lines += ["", note]
    return [*lines, ""]


def markdown(
    command: str, machine: dict[str, Any], config: Config, results: list[FamilyResult]
) -> str:
    """The whole report: command, machine, method, one section per family."""
    versions = ", ".join(f"{name} {v}" for name, v in machine["versions"].items() if v)
    commit = f" at commit `{machine['git_commit']}`" if machine.get("git_commit") else ""
    if machine.get("jaxscope_uncommitted_changes"):
        commit += " (with uncommitted changes in `jaxscope/`)"
    load = machine.get("load_average_at_start")
    end_load = machine.get("load_average_at_end")
    lines = [
        "# jaxscope benchmarks",
        "",
        f"Produced by `{command}` on {machine['date']}{commit}, in {machine.get('wall_s', '?')} s.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}, "
        f"Python {machine['python']}, JAX device {machine['device']}; load average "
        f"(1, 5, 15 min) {load} at the start, {end_load} at the end.",
        f"- Versions: {versions}.",
        f"- Method: each time is the median of {config.repeats} samples taken after "
        f"{config.warmup} warm-up run(s), all implementations in the same process run, "
        "their samples interleaved round-robin; "
        + (
            f"a sample of a call shorter than {config.min_sample_s * 1e3:.0f} ms loops it "
            "and reports the time per call; "
            if config.min_sample_s > 0
            else ""
        )
        + "the garbage collector is paused during samples. Trace times trace a fresh "
        "function object every time, so no JAX cache answers. Times are wall-clock; "
        "`results.json` also holds each sample's process CPU time.",
    ]
    if config.quick:
        lines.append("- `--quick`: tiny sizes for a smoke test; these numbers mean nothing.")
    lines.append("")
    summary = [line for result in results for line in result.summary]
    if summary:
        lines += ["## Summary against the targets of issue 5", ""]
        lines += [f"- {line}" for line in summary] + [""]
    for result in results:
        lines += _family(result)
    return "\n".join(lines)


def to_json(
    command: str, machine: dict[str, Any], config: Config, results: list[FamilyResult]
) -> dict[str, Any]:
    """Every raw sample and check, JSON-able."""
    return {
        "command": command,
        "machine": machine,
        "config": {
            "repeats": config.repeats,
            "warmup": config.warmup,
            "quick": config.quick,
            "min_sample_s": config.min_sample_s,
        },
        "families": [result.to_json() for result in results],
    }
