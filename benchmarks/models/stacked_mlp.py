"""An MLP of identical layers, unrolled or run as one scan over stacked
variables: the model of the ``layer_stack`` compile-time sweep.

Every layer is ``tanh(x @ kernel + bias)`` with a square kernel. Unrolled,
the program holds one copy of the layer per layer, so compile time grows
with depth; stacked (variables with a leading layer axis, one
``lax.scan``), it holds one copy whatever the depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxscope as js
from benchmarks.models import Impl, identity

__all__ = [
    "jaxscope_layer_stack",
    "jaxscope_unrolled",
    "pure_jax_scan",
    "pure_jax_unrolled",
]

_glorot = jax.nn.initializers.glorot_uniform()


def _layer(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    return jnp.tanh(x @ kernel + bias)


def pure_jax_unrolled(depth: int, width: int) -> Impl:
    """Hand-written JAX, one Python iteration per layer."""

    def init(rng: jax.Array, x: jax.Array) -> dict:
        keys = jax.random.split(rng, depth)
        return {
            f"layer_{i}": {
                "kernel": _glorot(keys[i], (width, width), jnp.float32),
                "bias": jnp.zeros((width,), jnp.float32),
            }
            for i in range(depth)
        }

    def apply(params: dict, x: jax.Array) -> jax.Array:
        for i in range(depth):
            x = _layer(x, params[f"layer_{i}"]["kernel"], params[f"layer_{i}"]["bias"])
        return x

    return Impl("pure_jax_unrolled", "pure JAX, unrolled", init, apply, identity, identity)


def pure_jax_scan(depth: int, width: int) -> Impl:
    """Hand-written JAX, stacked params and one ``jax.lax.scan``."""

    def init(rng: jax.Array, x: jax.Array) -> dict:
        keys = jax.random.split(rng, depth)
        kernels = jax.vmap(lambda k: _glorot(k, (width, width), jnp.float32))(keys)
        return {"stack": {"kernel": kernels, "bias": jnp.zeros((depth, width), jnp.float32)}}

    def apply(params: dict, x: jax.Array) -> jax.Array:
        def body(x, layer):
            return _layer(x, layer["kernel"], layer["bias"]), None

        return jax.lax.scan(body, x, params["stack"])[0]

    return Impl("pure_jax_scan", "pure JAX, `lax.scan`", init, apply, identity, identity)


def _jaxscope_layer(x: jax.Array) -> jax.Array:
    kernel = js.get_variable("kernel", [x.shape[-1], x.shape[-1]])
    bias = js.get_variable("bias", [x.shape[-1]], initializer=js.initializers.zeros)
    return _layer(x, kernel, bias)


def jaxscope_unrolled(depth: int, width: int) -> Impl:
    """jaxscope, one ``variable_scope(f"layer_{i}")`` per layer."""

    def model(x: jax.Array) -> jax.Array:
        for i in range(depth):
            with js.variable_scope(f"layer_{i}"):
                x = _jaxscope_layer(x)
        return x

    f = js.transform(model)
    return Impl("jaxscope_unrolled", "jaxscope, unrolled", f.init, f.apply, identity, identity)


def jaxscope_layer_stack(depth: int, width: int) -> Impl:
    """jaxscope, ``js.layer_stack(depth)`` over one layer function."""

    def model(x: jax.Array) -> jax.Array:
        with js.variable_scope("stack"):
            return js.layer_stack(depth)(_jaxscope_layer)(x)

    f = js.transform(model)
    return Impl(
        "jaxscope_layer_stack", "jaxscope, `layer_stack`", f.init, f.apply, identity, identity
    )
