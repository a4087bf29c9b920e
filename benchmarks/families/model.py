"""Figures (a)-(d) for a model written several ways.

For each implementation of a :class:`~benchmarks.models.ModelSpec`:

- trace time: ``jax.make_jaxpr(apply)`` and ``jax.jit(apply).lower(...)``,
  each on a fresh function object so JAX's tracing cache never answers;
- ``init`` time, eager and jitted (the compiled call, compile excluded);
- eager (un-jitted) ``apply`` time;
- compiled train step (forward, backward, optax Adam update).

It also checks that every implementation computes the baseline's output
given the baseline's params (converted to its layout), whether its compiled
train step is the baseline's XLA program (optimized HLO without metadata),
and derives the scoping overhead per variable from the trace times.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import statistics
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from benchmarks.harness import (
    Config,
    FamilyResult,
    Measurement,
    block,
    fill_ratios,
    normalized_hlo,
    time_interleaved,
)
from benchmarks.models import Impl, ModelSpec

__all__ = ["FIGURES", "ModelFamily", "measure_model"]

FIGURES = [
    ("trace_make_jaxpr", "trace: `jax.make_jaxpr(apply)`"),
    ("trace_lower", "trace: `jax.jit(apply).lower(...)`"),
    ("init_eager", "`init`, eager"),
    ("init_jit", "`init`, jitted (compiled call)"),
    ("apply_eager", "`apply`, eager (un-jitted)"),
    ("train_step", "train step, compiled (fwd + bwd + Adam)"),
]
# Figures whose difference to the baseline, per variable, is the scoping overhead.
OVERHEAD_FIGURES = ("trace_make_jaxpr", "trace_lower", "apply_eager")


def _fresh(fn: Callable) -> Callable:
    """A new function object calling ``fn``: JAX caches traces by function
    identity, and a trace-time figure must trace every time."""
    return lambda *args: fn(*args)


def _train_step(impl: Impl, loss: Callable, optimizer: optax.GradientTransformation):
    def train_step(params, opt_state, inputs, target):
        def loss_fn(p):
            return loss(impl.apply(p, *inputs), target)

        value, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return train_step


def _prepare_impl(
    impl: Impl, spec: ModelSpec, params: Any
) -> tuple[dict[str, Callable[[], Any]], str]:
    """One implementation's figures as argument-less calls (init and train
    step compiled here, outside the timings), and its train step's
    normalized optimized HLO."""
    rng = jax.random.key(0)
    inputs = spec.inputs
    init_compiled = jax.jit(impl.init).lower(rng, *inputs).compile()
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    step = jax.jit(_train_step(impl, spec.loss, optimizer))
    step_compiled = step.lower(params, opt_state, inputs, spec.target).compile()
    calls = {
        "trace_make_jaxpr": lambda: jax.make_jaxpr(_fresh(impl.apply))(params, *inputs),
        "trace_lower": lambda: jax.jit(_fresh(impl.apply)).lower(params, *inputs),
        "init_eager": lambda: block(impl.init(rng, *inputs)),
        "init_jit": lambda: block(init_compiled(rng, *inputs)),
        "apply_eager": lambda: block(impl.apply(params, *inputs)),
        "train_step": lambda: block(step_compiled(params, opt_state, inputs, spec.target)),
    }
    return calls, normalized_hlo(step_compiled.as_text())


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: (tuple(leaf.shape), str(leaf.dtype)), tree)


def _max_abs_diff(a: Any, b: Any) -> float:
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def measure_model(
    name: str, spec: ModelSpec, config: Config, targets: tuple[str, ...] = ()
) -> FamilyResult:
    """Measures every implementation in ``spec``, figure by figure, the
    samples of the implementations interleaved; ratios are to the first
    (the pure-JAX baseline), measured in the same run. ``targets`` names the
    targets of issue 5 the summary checks: ``"overhead"`` (trace time,
    overhead per variable, eager apply) and ``"train_step"``."""
    baseline = spec.impls[0]
    result = FamilyResult(
        name=name,
        title=spec.title,
        figures=list(FIGURES),
        impls=[(impl.name, impl.label) for impl in spec.impls],
        ratio_label=baseline.label,
    )
    common = baseline.init(jax.random.key(0), *spec.inputs)
    expected = baseline.apply(common, *spec.inputs)
    hlos, calls, agreement = {}, {}, {}
    for impl in spec.impls:
        # The same values everywhere, so that every framework computes the same thing.
        own_init = impl.init(jax.random.key(0), *spec.inputs)
        same_tree = _shapes(impl.to_common(own_init)) == _shapes(common)
        params = impl.from_common(common)
        agreement[impl.name] = {
            "max_abs_diff_vs_baseline": _max_abs_diff(impl.apply(params, *spec.inputs), expected),
            "same_variable_tree": bool(same_tree),
        }
        calls[impl.name], hlos[impl.name] = _prepare_impl(impl, spec, params)
    # Each figure times all implementations with their samples interleaved.
    for figure, _ in FIGURES:
        timed = time_interleaved({name: c[figure] for name, c in calls.items()}, config)
        for name, (samples, number, cpu) in timed.items():
            result.measurements.append(
                Measurement(figure, name, samples, number=number, cpu_samples=cpu)
            )
    fill_ratios(result.measurements, baseline.name)

    result.checks["outputs"] = agreement
    result.checks["same_train_step_program_as_baseline"] = {
        name: hlo == hlos[baseline.name] for name, hlo in hlos.items()
    }
    result.checks["n_variables"] = spec.n_variables
    for key, median in (
        ("overhead_us_per_variable", lambda m: m.median),
        ("overhead_us_per_variable_cpu", lambda m: statistics.median(m.cpu_samples)),
    ):
        result.checks[key] = {
            figure: {
                impl.name: 1e6
                * (
                    median(result.get(figure, impl.name))
                    - median(result.get(figure, baseline.name))
                )
                / spec.n_variables
                for impl in spec.impls[1:]
            }
            for figure in OVERHEAD_FIGURES
        }
    result.notes.extend(_notes(result, spec))
    result.summary.extend(_summary(result, targets))
    return result


# Targets of issue 5 for jaxscope against pure JAX.
TRACE_RATIO_TARGET = 1.10
EAGER_RATIO_TARGET = 1.3
OVERHEAD_TARGET_US = 15.0
HAIKU_SHARE_TARGET = 0.25
TRAIN_STEP_RATIO_TARGET = 1.02


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _summary(result: FamilyResult, targets: tuple[str, ...]) -> list[str]:
    """One line per target, for jaxscope against the baseline and Haiku."""
    if result.get("trace_make_jaxpr", "jaxscope") is None:
        return []
    base = result.ratio_label
    traces = ("trace_make_jaxpr", "trace_lower")
    ratios = [result.get(figure, "jaxscope").ratio for figure in traces]
    eager = result.get("apply_eager", "jaxscope").ratio
    step = result.get("train_step", "jaxscope").ratio
    same = result.checks["same_train_step_program_as_baseline"]["jaxscope"]
    program = f"{'the same' if same else '**not the same**'} XLA program"
    lines = []
    if "overhead" in targets:
        wall = result.checks["overhead_us_per_variable"]
        cpu = result.checks["overhead_us_per_variable_cpu"]
        over = [wall[f]["jaxscope"] for f in traces]
        over_cpu = [cpu[f]["jaxscope"] for f in traces]
        line = (
            f"{result.title}: jaxscope's trace time is {ratios[0]:.2f}x (`make_jaxpr`) and "
            f"{ratios[1]:.2f}x (`lower`) {base}'s (target at most {TRACE_RATIO_TARGET}x: "
            f"{_verdict(max(ratios) <= TRACE_RATIO_TARGET)}); overhead per variable "
            f"{over[0]:.0f} / {over[1]:.0f} µs wall-clock, {over_cpu[0]:.0f} / "
            f"{over_cpu[1]:.0f} µs CPU (target at most {OVERHEAD_TARGET_US:.0f} µs: "
            f"{_verdict(max(over_cpu) <= OVERHEAD_TARGET_US)})"
        )
        if "pure_jax_named" in cpu["trace_make_jaxpr"]:
            named = [cpu[f]["pure_jax_named"] for f in traces]
            line += (
                f", of which JAX's own `jax.named_scope` is {named[0]:.0f} / {named[1]:.0f} µs "
                "(pure JAX with a named scope per layer)"
            )
        if "haiku" in wall["trace_make_jaxpr"]:
            haiku_cpu = [cpu[f]["haiku"] for f in traces]
            ok = all(o <= HAIKU_SHARE_TARGET * h for o, h in zip(over_cpu, haiku_cpu, strict=True))
            line += (
                f"; Haiku's is {haiku_cpu[0]:.0f} / {haiku_cpu[1]:.0f} µs CPU (target at most "
                f"a quarter of it: {_verdict(ok)})"
            )
        lines.append(line + ".")
        lines.append(
            f"{result.title}: jaxscope's eager apply is {eager:.2f}x {base}'s (target at most "
            f"{EAGER_RATIO_TARGET}x: {_verdict(eager <= EAGER_RATIO_TARGET)}); its compiled "
            f"train step {step:.2f}x, and {program}."
        )
    if "train_step" in targets:
        lines.append(
            f"{result.title}: jaxscope's compiled train step is {step:.2f}x {base}'s "
            f"(target at most {TRAIN_STEP_RATIO_TARGET}x: "
            f"{_verdict(step <= TRAIN_STEP_RATIO_TARGET and same)}), and {program}; "
            f"trace time {ratios[0]:.2f}x (`make_jaxpr`) and {ratios[1]:.2f}x (`lower`)."
        )
    return lines


def _notes(result: FamilyResult, spec: ModelSpec) -> list[str]:
    """Markdown blocks: the per-variable overhead table and the checks."""
    impls = result.impls[1:]
    labels = dict(FIGURES)
    lines = [
        f"Scoping overhead per variable: (median minus {result.ratio_label}'s) / "
        f"{spec.n_variables} variables, in microseconds; wall-clock, and the process's "
        "CPU time (less sensitive to other load on the machine).",
        "",
        "| figure | " + " | ".join(label for _, label in impls) + " |",
        "|---|" + "---:|" * len(impls),
    ]
    for key, clock in (
        ("overhead_us_per_variable", "wall"),
        ("overhead_us_per_variable_cpu", "CPU"),
    ):
        overhead = result.checks[key]
        for figure in OVERHEAD_FIGURES:
            cells = (f"{overhead[figure][name]:.1f} µs" for name, _ in impls)
            lines.append(f"| {labels[figure]}, {clock} | " + " | ".join(cells) + " |")
    same = result.checks["same_train_step_program_as_baseline"]
    outputs = result.checks["outputs"]
    notes = [
        "\n".join(lines),
        "Compiled train step is the same XLA program as "
        f"{result.ratio_label}'s (optimized HLO, metadata stripped, instructions renumbered): "
        + ", ".join(f"{label} {'yes' if same[name] else 'no'}" for name, label in impls)
        + ".",
        f"Outputs given {result.ratio_label}'s params (converted to each layout), "
        "max |difference|: "
        + ", ".join(
            f"{label} {outputs[name]['max_abs_diff_vs_baseline']:.2g}" for name, label in impls
        )
        + ".",
    ]
    notes.extend(f"{name} skipped: {reason}." for name, reason in spec.skipped.items())
    notes.extend(spec.notes)
    return notes


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """A benchmark family for the model module ``module`` (which defines
    ``build(quick: bool) -> ModelSpec``); skipped while the module does not
    exist or cannot be imported. ``targets``: see :func:`measure_model`."""

    name: str
    module: str
    title: str
    targets: tuple[str, ...] = ()

    def unavailable(self) -> str | None:
        try:
            found = importlib.util.find_spec(self.module)
        except ImportError as e:
            return f"{self.module} cannot be imported ({e})"
        if found is None:
            return f"{self.module} is not written yet"
        return None

    def run(self, config: Config) -> FamilyResult:
        try:
            module = importlib.import_module(self.module)
        except ImportError as e:
            return FamilyResult(self.name, self.title, skipped=f"{self.module}: {e}")
        return measure_model(self.name, module.build(config.quick), config, self.targets)
