"""Figure (e): compile time versus depth, ``js.layer_stack`` versus unrolled.

For 4, 16 and 64 layers of width 64, the wall time of
``jax.jit(apply).lower(params, x).compile()`` (on abstract params, so no
init runs) for pure JAX and jaxscope, unrolled and stacked. Ratios are to
unrolled pure JAX at the same depth; the checks hold each implementation's
compile time at the deepest over the shallowest (target for
``layer_stack``: 64 layers at most 1.5x 4 layers). Skipped while
``js.layer_stack`` does not exist.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.harness import Config, FamilyResult, Measurement, fill_ratios, time_interleaved
from benchmarks.models import stacked_mlp

__all__ = ["run"]

DEPTHS, WIDTH, BATCH = (4, 16, 64), 64, 32
QUICK_DEPTHS, QUICK_WIDTH, QUICK_BATCH = (1, 2), 8, 4
IMPLS = (
    stacked_mlp.pure_jax_unrolled,
    stacked_mlp.jaxscope_unrolled,
    stacked_mlp.pure_jax_scan,
    stacked_mlp.jaxscope_layer_stack,
)
TARGET_RATIO = 1.5


def run(config: Config) -> FamilyResult:
    depths, width, batch = (
        (QUICK_DEPTHS, QUICK_WIDTH, QUICK_BATCH) if config.quick else (DEPTHS, WIDTH, BATCH)
    )
    x = jnp.ones((batch, width), jnp.float32)
    rng = jax.random.key(0)
    result = FamilyResult(
        name="layer_stack",
        title=f"Compile time (`jit(apply).lower(...).compile()`) versus depth, width {width}",
        figures=[(f"compile_{depth}", f"{depth} layers") for depth in depths],
        ratio_label="pure JAX, unrolled, same depth",
    )
    # Compiles are slow and steady: a few samples suffice.
    compile_config = Config(
        repeats=min(config.repeats, 5),
        warmup=min(config.warmup, 1),
        quick=config.quick,
        min_sample_s=0,
    )
    for depth in depths:
        compiles = {}
        for make in IMPLS:
            impl = make(depth, width)
            if depth == depths[0]:
                result.impls.append((impl.name, impl.label))
            params = jax.eval_shape(impl.init, rng, x)

            def compile_once(impl=impl, params=params):
                return jax.jit(lambda *a: impl.apply(*a)).lower(params, x).compile()

            compiles[impl.name] = compile_once
        for name, (samples, number, cpu) in time_interleaved(compiles, compile_config).items():
            result.measurements.append(
                Measurement(f"compile_{depth}", name, samples, number=number, cpu_samples=cpu)
            )
    for figure, _ in result.figures:
        fill_ratios([m for m in result.measurements if m.figure == figure], "pure_jax_unrolled")
    deepest, shallowest = f"compile_{depths[-1]}", f"compile_{depths[0]}"
    growth = {
        name: result.get(deepest, name).median / result.get(shallowest, name).median
        for name, _ in result.impls
    }
    result.checks = {
        "depths": list(depths),
        f"compile_{depths[-1]}_over_{depths[0]}_layers": growth,
        "layer_stack_within_target": growth["jaxscope_layer_stack"] <= TARGET_RATIO,
    }
    result.notes.append(
        f"Compile time at {depths[-1]} layers over {depths[0]} layers: "
        + ", ".join(f"{label} {growth[name]:.2f}x" for name, label in result.impls)
        + f" (target for `layer_stack`: at most {TARGET_RATIO}x). Each figure is the median "
        f"of {compile_config.repeats} compiles."
    )
    result.summary.append(
        f"`layer_stack`: {depths[-1]} layers compile in {growth['jaxscope_layer_stack']:.2f}x "
        f"the time of {depths[0]} (target at most {TARGET_RATIO}x: "
        f"{'met' if growth['jaxscope_layer_stack'] <= TARGET_RATIO else '**missed**'}); "
        f"unrolled jaxscope {growth['jaxscope_unrolled']:.2f}x."
    )
    return result
