"""Figure (f): peak host memory of ``init`` for a model of ~500M parameters.

An MLP of depth 30 and width 4096 (503M float32 parameters, 2.0 GB) is
initialised in fresh processes (:mod:`benchmarks.memory_probe`): jaxscope
and pure JAX (for reference), each eagerly and jitted. Each figure is
the process's peak resident memory during ``init`` minus its resident memory
before, reported as a ratio to the parameter bytes; ``jax.eval_shape(f.init, ...)`` must
allocate no parameter memory.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys

from benchmarks.harness import Config, FamilyResult, Measurement

__all__ = ["run", "unavailable"]

DEPTH, WIDTH = 30, 4096
QUICK_DEPTH, QUICK_WIDTH = 4, 256
# (implementation, modes) per fresh process; eval_shape runs first in each.
PROBES = [("jaxscope", "eager"), ("jaxscope", "jit"), ("pure_jax", "eager"), ("pure_jax", "jit")]
# --quick: one process, no warm-up; jit after eager there reads as ~0 growth.
QUICK_PROBES = [("jaxscope", "eager,jit")]
FIGURES = [
    ("eval_shape", "`jax.eval_shape(init)`: peak growth"),
    ("eager", "`init`, eager: peak growth"),
    ("jit", "`init`, jitted (incl. compile): peak growth"),
]
IMPLS = [("jaxscope", "jaxscope"), ("pure_jax", "pure JAX")]
# eval_shape "allocates no parameter memory" when its peak grows by less than
# this share of the parameter bytes, or less than the allocator's noise.
EVAL_SHAPE_TOLERANCE = 0.01
ALLOCATOR_NOISE_BYTES = 4 << 20
EAGER_TARGET = 1.1  # issue 5: peak memory of init at most 1.1x the parameter bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unavailable() -> str | None:
    if not sys.platform.startswith("linux") and sys.platform != "darwin":
        return "ru_maxrss is only read on Linux and macOS"
    return None


def _probe(impl: str, modes: str, depth: int, width: int, quick: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory_probe", "--impl", impl]
    command += ["--modes", modes, "--depth", str(depth), "--width", str(width)]
    if quick:
        command.append("--no-warmup")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(config: Config) -> FamilyResult:
    """Runs the probes, two processes at a time (memory is per process, so
    they do not disturb each other's figures)."""
    depth, width = (QUICK_DEPTH, QUICK_WIDTH) if config.quick else (DEPTH, WIDTH)
    plan = QUICK_PROBES if config.quick else PROBES
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        probes = list(pool.map(lambda p: _probe(p[0], p[1], depth, width, config.quick), plan))
    param_bytes = probes[0]["param_bytes"]
    result = FamilyResult(
        name="memory",
        title=(
            f"Peak host memory of `init`, MLP depth {depth} width {width}: "
            f"{probes[0]['param_count'] / 1e6:.1f}M float32 parameters, "
            f"{param_bytes / 1e9:.3f} GB"
        ),
        figures=FIGURES,
        impls=[(name, label) for name, label in IMPLS if any(p["impl"] == name for p in probes)],
        ratio_label="parameter bytes",
    )
    eval_shape_growth = {}
    for probe in probes:
        for mode, figures in probe["modes"].items():
            if mode == "eval_shape":
                # Every process measures it; keep the largest growth seen.
                eval_shape_growth.setdefault(probe["impl"], []).append(figures["peak_growth_bytes"])
                continue
            m = Measurement(
                mode, probe["impl"], [float(figures["peak_growth_bytes"])], unit="bytes"
            )
            m.ratio = m.median / param_bytes
            result.measurements.append(m)
    for impl, growths in eval_shape_growth.items():
        m = Measurement("eval_shape", impl, [float(max(growths))], unit="bytes")
        m.ratio = m.median / param_bytes
        result.measurements.append(m)
    jaxscope_eval_shape = result.get("eval_shape", "jaxscope")
    result.checks = {
        "param_count": probes[0]["param_count"],
        "param_bytes": param_bytes,
        "eval_shape_allocates_no_parameter_memory": jaxscope_eval_shape.median
        <= max(EVAL_SHAPE_TOLERANCE * param_bytes, ALLOCATOR_NOISE_BYTES),
        "probes": probes,
    }
    warmup = "after imports" if config.quick else "after imports and a warm-up on a tiny model"
    verdict = (
        "allocates no parameter memory"
        if result.checks["eval_shape_allocates_no_parameter_memory"]
        else "**allocates parameter memory**"
    )
    methods = sorted({m["method"] for p in probes for m in p["modes"].values()})
    result.notes.append(
        "Each figure is the peak resident memory of a fresh process during the call "
        f"minus its resident memory before ({'; '.join(methods)}), {warmup}; one sample, "
        "as memory is deterministic up to allocator noise. "
        f"`jax.eval_shape(f.init, ...)` {verdict}."
    )
    result.notes.append(
        "What eager `init` holds beyond the parameters is the random-number "
        "generation of one layer: JAX's threefry keeps a few buffers of the "
        "variable's size while it runs (eager or compiled alike), so the largest "
        "variable, not the scoping, sets it; the hand-written pure-JAX init pays "
        "the same."
    )
    eager = result.get("eager", "jaxscope")
    jitted = result.get("jit", "jaxscope")
    pure = result.get("eager", "pure_jax")
    result.summary.append(
        f"Peak memory of jaxscope's `init` ({probes[0]['param_count'] / 1e6:.3g}M parameters): "
        f"eager {eager.ratio:.2f}x the parameter bytes (target at most {EAGER_TARGET}x: "
        f"{'met' if eager.ratio <= EAGER_TARGET else '**missed**'}"
        + (f"; pure JAX's {pure.ratio:.2f}x" if pure is not None else "")
        + f"), jitted {jitted.ratio:.2f}x; `jax.eval_shape` of `init` {verdict}."
    )
    return result
