"""The depth-100 MLP (200 variables) written six ways: what scoping costs.

    python -m benchmarks.mlp                 # about 3 minutes on 2 cores
    python -m benchmarks.mlp --quick         # depth 3, width 8: a smoke test

A deep, narrow MLP (depth 100, width 64, batch 32) has many small variables
and little compute, so its trace time is mostly what each framework does per
variable. Every layer is ``x @ kernel + bias`` with tanh between layers,
Glorot-uniform kernels and zero biases, named ``layer_<i>/kernel`` and
``layer_<i>/bias``. Written as: pure JAX with a params dict (the baseline);
pure JAX with one ``jax.named_scope`` per layer (what JAX charges for the
op-name scopes jaxscope opens); jaxscope; flax.linen and Flax NNX with their
``Dense``/``Linear``; Haiku with ``hk.Linear`` (needs dm-haiku; skipped
without it).

Figures: trace time under ``jax.make_jaxpr(apply)`` and
``jax.jit(apply).lower(...)`` (a fresh function each sample), the overhead
per variable over pure JAX, eager ``init`` and ``apply`` (outputs blocked
on), and the compiled train step (forward, backward, optax Adam) with
whether its optimized HLO is pure JAX's. Every version runs on pure JAX's
params, converted to its layout, and its output is checked against pure
JAX's. Targets: ``benchmarks/targets.toml``, ``[mlp]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js
from benchmarks import harness
from benchmarks.harness import Impl

DEPTH, WIDTH, BATCH = 100, 64, 32
QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH = 3, 8, 4
REPEATS = 10

_glorot = jax.nn.initializers.glorot_uniform()


def _activation(i: int, depth: int, x: jax.Array) -> jax.Array:
    return jnp.tanh(x) if i < depth - 1 else x


def pure_jax(depth: int, width: int) -> Impl:
    """Hand-written JAX with an explicit params dict: the baseline."""

    def init(rng: jax.Array, x: jax.Array) -> dict:
        keys = jax.random.split(rng, depth)
        params, fan_in = {}, x.shape[-1]
        for i in range(depth):
            params[f"layer_{i}"] = {
                "kernel": _glorot(keys[i], (fan_in, width), jnp.float32),
                "bias": jnp.zeros((width,), jnp.float32),
            }
            fan_in = width
        return params

    def apply(params: dict, x: jax.Array) -> jax.Array:
        for i in range(depth):
            layer = params[f"layer_{i}"]
            x = _activation(i, depth, x @ layer["kernel"] + layer["bias"])
        return x

    return Impl("pure JAX", init, apply)


def pure_jax_named(depth: int, width: int) -> Impl:
    """The baseline with ``jax.named_scope(f"layer_{i}")`` around each
    layer's parameter reads, where jaxscope opens its variable scopes."""
    base = pure_jax(depth, width)

    def apply(params: dict, x: jax.Array) -> jax.Array:
        for i in range(depth):
            with jax.named_scope(f"layer_{i}"):
                layer = params[f"layer_{i}"]
                kernel, bias = layer["kernel"], layer["bias"]
            x = _activation(i, depth, x @ kernel + bias)
        return x

    return Impl("pure JAX + `jax.named_scope`", base.init, apply)


def jaxscope(depth: int, width: int) -> Impl:
    """Each layer in ``js.variable_scope(f"layer_{i}")`` with
    ``js.get_variable("kernel")`` and ``("bias")``."""

    def model(x: jax.Array) -> jax.Array:
        for i in range(depth):
            with js.variable_scope(f"layer_{i}"):
                kernel = js.get_variable("kernel", [x.shape[-1], width])
                bias = js.get_variable("bias", [width], initializer=js.initializers.zeros)
            x = _activation(i, depth, x @ kernel + bias)
        return x

    f = js.transform(model)
    return Impl("jaxscope", f.init, f.apply)


def flax_linen(depth: int, width: int) -> Impl:
    """A ``flax.linen`` module of ``nn.Dense`` layers."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            for i in range(depth):
                x = _activation(
                    i, depth, nn.Dense(width, kernel_init=_glorot, name=f"layer_{i}")(x)
                )
            return x

    module = MLP()
    return Impl(
        "flax.linen",
        module.init,
        module.apply,
        lambda variables: variables["params"],
        lambda params: {"params": params},
    )


def flax_nnx(depth: int, width: int) -> Impl:
    """A Flax NNX module of ``nnx.Linear`` layers, run functionally as NNX
    users run it under ``jax.jit``: ``nnx.split`` once, ``nnx.merge`` of the
    graph definition and the params state in every call."""
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, fan_in: int, rngs: nnx.Rngs):
            for i in range(depth):
                layer = nnx.Linear(
                    fan_in if i == 0 else width, width, kernel_init=_glorot, rngs=rngs
                )
                setattr(self, f"layer_{i}", layer)

        def __call__(self, x: jax.Array) -> jax.Array:
            for i in range(depth):
                x = _activation(i, depth, getattr(self, f"layer_{i}")(x))
            return x

    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: MLP(width, nnx.Rngs(0))))

    def init(rng: jax.Array, x: jax.Array) -> Any:
        return nnx.split(MLP(x.shape[-1], nnx.Rngs(params=rng)))[1]

    def apply(state: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    def from_common(params: dict) -> Any:
        state = jax.tree.map(lambda leaf: leaf, abstract)
        nnx.replace_by_pure_dict(state, params)
        return state

    return Impl("Flax NNX", init, apply, nnx.to_pure_dict, from_common)


def haiku(depth: int, width: int) -> Impl:
    """A Haiku function of ``hk.Linear`` layers."""
    import haiku as hk

    def model(x: jax.Array) -> jax.Array:
        for i in range(depth):
            w_init = hk.initializers.VarianceScaling(1.0, "fan_avg", "uniform")
            x = _activation(i, depth, hk.Linear(width, w_init=w_init, name=f"layer_{i}")(x))
        return x

    f = hk.without_apply_rng(hk.transform(model))
    return Impl(
        "Haiku",
        f.init,
        f.apply,
        lambda params: {k: {"kernel": p["w"], "bias": p["b"]} for k, p in params.items()},
        lambda params: {k: {"w": p["kernel"], "b": p["bias"]} for k, p in params.items()},
    )


IMPLS = {
    "pure_jax": pure_jax,
    "named_scope": pure_jax_named,
    "jaxscope": jaxscope,
    "flax_linen": flax_linen,
    "flax_nnx": flax_nnx,
    "haiku": haiku,
}
FIGURES = ("make_jaxpr", "lower", "init", "apply", "train_step")


def build(depth: int, width: int) -> tuple[dict[str, Impl], list[str]]:
    """The implementations that can be built, and those skipped (Haiku is
    optional)."""
    impls, skipped = {}, []
    for name, make in IMPLS.items():
        try:
            impls[name] = make(depth, width)
        except ImportError:
            skipped.append(name)
    return impls, skipped


def _verdicts(result: dict[str, Any], n_variables: int) -> tuple[list[str], dict[str, Any]]:
    """One line per target of ``[mlp]``, and the figures judged."""
    target = harness.targets("mlp")
    samples = result["samples"]
    over = {
        f: harness.overhead_us(result, f, "jaxscope", n_variables, cpu=True)
        for f in ("make_jaxpr", "lower")
    }
    named = {
        f: samples[f]["jaxscope"].cpu_median / samples[f]["named_scope"].cpu_median
        for f in ("make_jaxpr", "lower")
    }
    eager = samples["apply"]["jaxscope"].median / samples["apply"]["pure_jax"].median
    step = samples["train_step"]["jaxscope"].median / samples["train_step"]["pure_jax"].median
    same = result["same_program"]["jaxscope"]
    figures = {
        "overhead_us_per_variable": over,
        "trace_over_named_scope": named,
        "eager_apply_over_pure_jax": eager,
        "train_step_over_pure_jax": step,
        "same_train_step_program": same,
    }
    lines = [
        f"trace overhead per variable over pure JAX (CPU time): {over['make_jaxpr']:.1f} µs "
        f"(`make_jaxpr`), {over['lower']:.1f} µs (`lower`); target at most "
        f"{target['overhead_us_per_variable']} µs: "
        + harness.verdict(max(over.values()), target["overhead_us_per_variable"]),
        f"trace time over pure JAX with one `jax.named_scope` per layer (CPU time): "
        f"{named['make_jaxpr']:.3f}x (`make_jaxpr`), {named['lower']:.3f}x (`lower`); target "
        f"at most {target['trace_over_named_scope']}x: "
        + harness.verdict(max(named.values()), target["trace_over_named_scope"]),
        f"eager `apply` over pure JAX (wall-clock): {eager:.2f}x; target at most "
        f"{target['eager_apply_over_pure_jax']}x: "
        + harness.verdict(eager, target["eager_apply_over_pure_jax"]),
        f"compiled train step over pure JAX: {step:.2f}x, "
        + ("the same XLA program" if same else "**not the same XLA program**")
        + f"; target at most {target['train_step_over_pure_jax']}x and the same program: "
        + (harness.verdict(step, target["train_step_over_pure_jax"]) if same else "**missed**"),
    ]
    return lines, figures


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what ``--json`` writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = harness.parser("mlp", __doc__, REPEATS)
    args = parser.parse_args(argv)
    depth, width, batch = (
        (QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH) if args.quick else (DEPTH, WIDTH, BATCH)
    )
    repeats = args.repeats or (1 if args.quick else REPEATS)
    start, info = time.perf_counter(), harness.machine()
    impls, skipped = build(depth, width)
    data = np.random.default_rng(1)  # numpy: no XLA program to compile for the data
    x = jnp.asarray(data.standard_normal((batch, width)), jnp.float32)
    y = jnp.asarray(data.standard_normal((batch, width)), jnp.float32)
    result = harness.compare(
        impls,
        (x,),
        y,
        lambda out, y: jnp.mean((out - y) ** 2),
        FIGURES,
        repeats,
        warmup=0 if args.quick else 1,
        min_sample_s=0.0 if args.quick else 0.05,
        compiler_options=harness.QUICK_COMPILE if args.quick else None,
    )
    n_variables = 2 * depth
    lines, figures = _verdicts(result, n_variables)
    body = "\n".join(
        [
            f"Depth {depth}, width {width}, batch {batch}: {n_variables} variables. "
            f"{repeats} samples per figure, interleaved across the implementations.",
            "",
            "Against the targets (`targets.toml`, `[mlp]`):",
            "",
            *(f"- {line}" for line in lines),
            "",
            harness.compare_report(result, {n: i.label for n, i in impls.items()}, n_variables),
            *([""] + [f"Skipped (not installed): {', '.join(skipped)}."] if skipped else []),
        ]
    )
    raw = {
        "targets": figures,
        **harness.compare_figures(result),
        "skipped": skipped,
    }
    return harness.finish("mlp", argv, args, info, start, body, raw)


if __name__ == "__main__":
    run()
