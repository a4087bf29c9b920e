"""The initial values of variables created outside lifted transforms, pinned.

A traced ``init`` (``jax.jit``, ``jax.eval_shape``) stages each built-in
initializer as one call; the digests below were taken before it did, so
the values, eager and jitted, stay what they were. The errors of a failing
built-in initializer keep naming the variable under ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import jaxscope as js
from jaxscope import errors
from tests.test_layer_stack_init import digest

inits = js.initializers


def every_initializer(x):
    with js.variable_scope("a"):
        values = [
            js.get_variable("glorot", [5, 7]),
            js.get_variable("glorot_vector", [7]),
            js.get_variable("glorot_scalar", []),
            js.get_variable("empty", [0, 3]),
            js.get_variable("bf16", [4, 4], dtype=jnp.bfloat16),
            js.get_variable("f16", [3], dtype=jnp.float16),
            js.get_variable("int", [3], dtype=jnp.int32),
            js.get_variable("normal", [4, 3], initializer=inits.random_normal(0.5, 2.0)),
            js.get_variable("truncated", [4, 3], initializer=inits.truncated_normal(0.1, 0.3)),
            js.get_variable(  # an unhashable argument
                "array_stddev", [4], initializer=inits.truncated_normal(stddev=jnp.asarray(0.3))
            ),
            js.get_variable("uniform", [6], initializer=inits.random_uniform(-2.0, 3.0)),
            js.get_variable("scaled", [4, 5, 6], initializer=inits.variance_scaling(2.0, "fan_in")),
            js.get_variable(
                "untruncated",
                [4, 5],
                initializer=inits.variance_scaling(0.5, "fan_out", "untruncated_normal"),
            ),
            js.get_variable("glorot_normal", [5, 5], initializer=inits.glorot_normal()),
            js.get_variable("orthogonal", [6, 4], initializer=inits.orthogonal(1.5)),
            js.get_variable(
                "orthogonal16", [4, 4], dtype=jnp.bfloat16, initializer=inits.orthogonal()
            ),
            js.get_variable("constant", [2, 2], initializer=inits.constant([1, 2, 3, 4])),
            js.get_variable("zeros", [3], initializer=inits.zeros),
            js.get_variable("ones", [3], initializer=inits.ones),
            js.get_variable("lecun", [3, 3], initializer=jax.nn.initializers.lecun_normal()),
            js.get_variable("state", [3], trainable=False, initializer=inits.random_normal()),
        ]
        with js.variable_scope("b", initializer=inits.random_uniform(-1.0, 1.0)):
            values.append(js.get_variable("from_scope", [3, 3]))
    return x + sum(jnp.sum(jnp.asarray(v, jnp.float32)) for v in values)


def in_lifted_bodies(x):
    def step(h, _):
        with js.variable_scope("cell"):
            w = js.get_variable("w", [3, 3])
            b = js.get_variable("b", [3], initializer=inits.truncated_normal(stddev=0.2))
        return jnp.tanh(h @ w + b), None

    h = js.scan(step, x, None, length=2)[0]
    return js.vmap(lambda r: r @ js.get_variable("vmapped", [3, 3]))(jnp.stack([h, h]))


NO_STATE = digest({})
# (params digest, state digest), eager and jitted: they differ where XLA
# fuses random_normal's mean + stddev * z.
PINNED = {
    "every_initializer": (
        every_initializer,
        ("cfd190e419fcfc2c", "b157ea37df9fd16c"),
        ("dd84542802aa8106", "b157ea37df9fd16c"),
    ),
    "in_lifted_bodies": (
        in_lifted_bodies,
        ("33c34ddd33fed316", NO_STATE),
        ("33c34ddd33fed316", NO_STATE),
    ),
}


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(PINNED))
def test_initial_values_are_the_pinned_values(name, jitted):
    model, eager, jit = PINNED[name]
    init = js.transform_with_state(model).init
    params, state = (jax.jit(init) if jitted else init)(jax.random.key(3), jnp.ones(3))
    assert (digest(params), digest(state)) == (jit if jitted else eager)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_eval_shape_of_init_gives_the_shapes_and_dtypes_of_init(jitted):
    f = js.transform_with_state(every_initializer)
    abstract = jax.eval_shape(f.init, jax.random.key(3), jnp.ones(3))
    concrete = (jax.jit(f.init) if jitted else f.init)(jax.random.key(3), jnp.ones(3))
    shapes = jax.tree.map(lambda a: (a.shape, a.dtype), abstract)
    assert shapes == jax.tree.map(lambda a: (a.shape, a.dtype), concrete)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_a_built_in_initializer_refusing_the_dtype_names_the_variable(jitted):
    def model():
        with js.variable_scope("enc"):
            js.get_variable("steps", [3], dtype=jnp.int32, initializer=inits.random_normal())

    init = js.transform(model).init
    with pytest.raises(errors.InitializerError) as info:
        (jax.jit(init) if jitted else init)(0)
    for word in ("enc/steps", "int32", "Fix"):
        assert word in str(info.value)


def test_init_without_an_rng_needs_one_even_for_keyless_initializers():
    def model():
        js.get_variable("b", [3], initializer=inits.zeros)

    with pytest.raises(errors.MissingRNGError, match="b needs a random key"):
        js.transform(model).init(None)
