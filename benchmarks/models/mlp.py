"""A deep, narrow MLP written five ways: many small variables.

Depth 100 and width 64 make 200 variables of little compute each, so the
trace time is dominated by what each framework does per variable. Every
layer is ``x @ kernel + bias`` with tanh between layers, Glorot-uniform
kernels and zero biases, named ``layer_{i}/kernel`` and ``layer_{i}/bias``
(Haiku's ``hk.Linear`` says ``w`` and ``b``). Each version is written the way
that framework's users write it: jaxscope and flax.core against their scope
APIs, flax.linen and Haiku with their dense-layer modules.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js
from benchmarks.models import Impl, ModelSpec, build_impls, flax_core_impl, identity

__all__ = ["build", "flax_core", "flax_linen", "haiku", "jaxscope", "pure_jax", "pure_jax_named"]

DEPTH, WIDTH, BATCH = 100, 64, 32
QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH = 3, 8, 4

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

    return Impl("pure_jax", "pure JAX", init, apply, identity, identity)


def pure_jax_named(depth: int, width: int) -> Impl:
    """The baseline with a ``jax.named_scope(f"layer_{i}")`` around each
    layer's parameter reads, where jaxscope opens its variable scopes: not a
    framework, but what JAX itself charges for the op-name scopes that every
    ``js.variable_scope`` opens (DESIGN's op-name scopes)."""
    base = pure_jax(depth, width)

    def apply(params: dict, x: jax.Array) -> jax.Array:
        for i in range(depth):
            with jax.named_scope(f"layer_{i}"):
                layer = params[f"layer_{i}"]
                kernel, bias = layer["kernel"], layer["bias"]
            x = _activation(i, depth, x @ kernel + bias)
        return x

    return Impl(
        "pure_jax_named", "pure JAX + `jax.named_scope`", base.init, apply, identity, identity
    )


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
    return Impl("jaxscope", "jaxscope", f.init, f.apply, identity, identity)


def flax_linen(depth: int, width: int) -> Impl:
    """A ``flax.linen`` module of ``nn.Dense`` layers."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            for i in range(depth):
                x = nn.Dense(width, kernel_init=_glorot, name=f"layer_{i}")(x)
                x = _activation(i, depth, x)
            return x

    module = MLP()
    return Impl(
        "flax_linen",
        "flax.linen",
        module.init,
        module.apply,
        lambda variables: variables["params"],
        lambda params: {"params": params},
    )


def flax_core(depth: int, width: int) -> Impl:
    """A function against ``flax.core``'s scope API (``scope.push``,
    ``scope.param``)."""

    def model(scope: Any, x: jax.Array) -> jax.Array:
        for i in range(depth):
            layer = scope.push(f"layer_{i}")
            kernel = layer.param("kernel", _glorot, (x.shape[-1], width), jnp.float32)
            bias = layer.param("bias", jax.nn.initializers.zeros, (width,), jnp.float32)
            x = _activation(i, depth, x @ kernel + bias)
        return x

    return flax_core_impl(model)


def haiku(depth: int, width: int) -> Impl:
    """A Haiku function of ``hk.Linear`` layers (needs dm-haiku, the
    optional ``bench`` extra)."""
    import haiku as hk

    def model(x: jax.Array) -> jax.Array:
        for i in range(depth):
            linear = hk.Linear(
                width,
                w_init=hk.initializers.VarianceScaling(1.0, "fan_avg", "uniform"),
                name=f"layer_{i}",
            )
            x = _activation(i, depth, linear(x))
        return x

    f = hk.without_apply_rng(hk.transform(model))

    def to_common(params: Any) -> dict:
        return {name: {"kernel": p["w"], "bias": p["b"]} for name, p in params.items()}

    def from_common(params: dict) -> dict:
        return {name: {"w": p["kernel"], "b": p["bias"]} for name, p in params.items()}

    return Impl("haiku", "Haiku", f.init, f.apply, to_common, from_common)


def build(quick: bool = False, depth: int | None = None, width: int | None = None) -> ModelSpec:
    """The MLP written five ways, and the baseline with ``jax.named_scope``
    (Haiku skipped, with the reason, when dm-haiku is not installed).

    Args:
        quick: tiny sizes (depth 3, width 8) for smoke tests.
        depth, width: override the sizes.
    """
    depth = depth or (QUICK_DEPTH if quick else DEPTH)
    width = width or (QUICK_WIDTH if quick else WIDTH)
    batch = QUICK_BATCH if quick else BATCH
    impls, skipped = build_impls(
        (pure_jax, jaxscope, flax_linen, flax_core, haiku, pure_jax_named), depth, width
    )
    data = np.random.default_rng(1)  # numpy: no XLA program to compile for the data
    x = jnp.asarray(data.standard_normal((batch, width)), jnp.float32)
    target = jnp.asarray(data.standard_normal((batch, width)), jnp.float32)
    return ModelSpec(
        title=f"MLP, depth {depth}, width {width}, batch {batch} ({2 * depth} variables)",
        impls=impls,
        skipped=skipped,
        inputs=(x,),
        target=target,
        loss=lambda out, y: jnp.mean((out - y) ** 2),
        n_variables=2 * depth,
    )
