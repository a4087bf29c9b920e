"""The initial values of ``js.layer_stack`` variables, pinned.

Each program's params (and state, and what its regularizers and custom
getters gave) are pinned by a digest of their bytes, shapes and dtypes,
taken before the stacked variables were initialized by one vmapped
initializer: a faster init must give the very same values, eager and
jitted. The error paths of stacked initialization keep their types and
words.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

D = 3
X = jnp.linspace(-1.0, 1.0, 2 * D, dtype=jnp.float32).reshape(2, D)


def digest(tree) -> str:
    """A digest of every leaf's path, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, leaf in sorted(js.flatten(tree).items()) if isinstance(tree, dict) else [("", tree)]:
        leaf = np.asarray(leaf)
        h.update(f"{path}:{leaf.dtype}:{leaf.shape}:".encode())
        h.update(leaf.tobytes())
    return h.hexdigest()[:16]


def mlp(x):
    @js.layer_stack(3)
    def layer(x):
        kernel = js.get_variable("kernel", [D, D])
        bias = js.get_variable("bias", [D], initializer=js.initializers.zeros)
        return jnp.tanh(x @ kernel + bias)

    with js.variable_scope("stack"):
        return layer(x)


def initializers(x):
    @js.layer_stack(4, layer_name="block")
    def layer(x):
        i = js.initializers
        a = js.get_variable("normal", [D, D], initializer=i.random_normal(0.5, 2.0))
        b = js.get_variable("truncated", [D, D], initializer=i.truncated_normal(stddev=0.1))
        c = js.get_variable("uniform", [D], initializer=i.random_uniform(-3.0, 3.0))
        d = js.get_variable("scaled", [D, D], initializer=i.variance_scaling(2.0, "fan_avg"))
        e = js.get_variable("orthogonal", [D, D], initializer=i.orthogonal())
        f = js.get_variable("constant", [D], initializer=i.constant(0.3))
        g = js.get_variable("concrete", initializer=np.arange(D, dtype=np.float32))
        h = js.get_variable("half", [D], dtype=jnp.bfloat16)
        n = js.get_variable("count", [D], dtype=jnp.int32)
        with js.variable_scope("inner", initializer=i.random_uniform(0.0, 1.0)):
            k = js.get_variable("from_scope", [D])
        y = x @ (a + b + d + e) + c + f + g + h.astype(jnp.float32) + n + k
        return jnp.tanh(y)

    with js.variable_scope("net"):
        return layer(x)


def stateful(x):
    @js.layer_stack(3)
    def layer(x):
        w = js.get_variable("w", [D, D])
        s = js.get_variable("s", [D], trainable=False, initializer=js.initializers.random_normal())
        js.assign("s", s + 1.0)
        return x @ w + s

    return layer(x)


def derived(key, shape, dtype):
    """An initializer that obtains a variable itself (as TF1 code may)."""
    base = js.get_variable("base", shape, dtype)
    return base + jax.random.uniform(key, shape, dtype)


def derived_initializer(x):
    @js.layer_stack(3)
    def layer(x):
        return x * js.get_variable("w", [D], initializer=derived)

    return layer(x)


def overriding_getter(getter, name, *args, **kwargs):
    """Doubles the value handed back and gives the ``w`` variables another
    initializer."""
    if name.endswith("/w"):
        kwargs["initializer"] = js.initializers.random_uniform(5.0, 6.0)
    return 2.0 * getter(name, *args, **kwargs)


def custom_getter(x):
    @js.layer_stack(2)
    def layer(x):
        w = js.get_variable("w", [D, D])
        v = js.get_variable("v", [D])
        return x @ w + v

    with js.variable_scope("g", custom_getter=overriding_getter):
        return layer(x)


def regularized(x):
    @js.layer_stack(3)
    def layer(x):
        w = js.get_variable("w", [D, D], regularizer=lambda w: jnp.sum(w**2))
        return x @ w

    with js.variable_scope("reg"):
        out = layer(x)
    return out, js.get_regularization_loss()


def stack_in_scan(x):
    def step(h, _):
        @js.layer_stack(2)
        def layer(h):
            return jnp.tanh(h @ js.get_variable("w", [D, D]))

        with js.variable_scope("decoder"):
            return layer(h), None

    return js.scan(step, x, None, length=3)[0]


# Digests taken before the stacked variables were initialized by one
# vmapped initializer. Eager and jitted values differ where XLA fuses a
# multiply and an add (random_normal's mean + stddev * z).
PARAMS = {
    "mlp": (mlp, "6453fb0ff8270e66", "6453fb0ff8270e66"),
    "initializers": (initializers, "87832994b6cd8400", "7afb9d779c660668"),
    "derived_initializer": (derived_initializer, "f03f715c926201d3", "f03f715c926201d3"),
    "custom_getter": (custom_getter, "0232fe724ca8eb52", "0232fe724ca8eb52"),
    "regularized": (regularized, "52db285fcc6ec159", "52db285fcc6ec159"),
    "stack_in_scan": (stack_in_scan, "5a6a8a0383cdc763", "5a6a8a0383cdc763"),
}


def init_of(model, jitted: bool, with_state: bool = False):
    f = js.transform_with_state(model) if with_state else js.transform(model)
    return jax.jit(f.init) if jitted else f.init


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_layer_stack_initial_params_are_the_pinned_values(name, jitted):
    model, eager_digest, jit_digest = PARAMS[name]
    params = init_of(model, jitted)(jax.random.key(7), X)
    assert digest(params) == (jit_digest if jitted else eager_digest)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_layer_stack_initial_state_is_the_pinned_values(jitted):
    params, state = init_of(stateful, jitted, with_state=True)(jax.random.key(7), X)
    assert jax.tree.map(jnp.shape, state) == {"s": (3, D)}
    assert digest(params) == "27b4e23d4284bb5f"
    assert digest(state) == "a6483a9d63cb055a"


def outputs_in_init(model):
    """What ``model`` returned while ``init`` ran."""
    captured = []

    def wrapped(x):
        captured.append(model(x))
        return captured[-1]

    js.transform(wrapped).init(jax.random.key(7), X)
    return captured[0]


def test_a_custom_getter_over_a_layer_stack_hands_back_the_pinned_values():
    params = js.transform(custom_getter).init(jax.random.key(7), X)
    w = params["g"]["w"]
    assert w.shape == (2, D, D) and bool(jnp.all((w >= 5.0) & (w < 6.0)))
    assert digest(outputs_in_init(custom_getter)) == "8fc52083d5723c3d"


def test_a_regularizer_in_a_layer_stack_sees_the_pinned_stacked_value():
    params = js.transform(regularized).init(jax.random.key(7), X)
    out, loss = outputs_in_init(regularized)
    assert digest(out) == "e17c6778bb7e324b"
    assert float(loss) == float.fromhex("0x1.bf02ca0000000p+2")
    np.testing.assert_allclose(loss, jnp.sum(params["reg"]["w"] ** 2), rtol=1e-6)


def test_stacked_variables_keep_their_names_and_a_leading_layer_axis():
    params = js.transform(initializers).init(jax.random.key(7), X)
    shapes = {name: v.shape for name, v in js.flatten(params).items()}
    assert shapes == {
        "net/normal": (4, D, D),
        "net/truncated": (4, D, D),
        "net/uniform": (4, D),
        "net/scaled": (4, D, D),
        "net/orthogonal": (4, D, D),
        "net/constant": (4, D),
        "net/concrete": (4, D),
        "net/half": (4, D),
        "net/count": (4, D),
        "net/inner/from_scope": (4, D),
    }
    assert js.flatten(params)["net/half"].dtype == jnp.bfloat16
    assert js.flatten(params)["net/count"].dtype == jnp.int32


def test_each_layer_is_initialized_as_the_unrolled_models_layer():
    def unrolled(x):
        with js.variable_scope("stack"):
            for i in range(3):
                with js.variable_scope(f"layer_{i}"):
                    kernel = js.get_variable("kernel", [D, D])
                    bias = js.get_variable("bias", [D], initializer=js.initializers.zeros)
                    x = jnp.tanh(x @ kernel + bias)
        return x

    stacked = js.transform(mlp).init(jax.random.key(7), X)
    expected = js.transform(unrolled).init(jax.random.key(7), X)
    got = {"stack": js.unstack_layers(stacked["stack"])}
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    jax.tree.map(np.testing.assert_array_equal, got, expected)


# --- error paths of stacked initialization --------------------------------------


def stack_of(**get_variable_kwargs):
    def model(x):
        @js.layer_stack(2)
        def layer(x):
            return x * js.get_variable("w", **get_variable_kwargs)

        with js.variable_scope("s"):
            return layer(x)

    return model


def wrong_shape(key, shape, dtype):
    return jnp.zeros((2,), dtype)


def refusing(key, shape, dtype):
    raise ValueError("refused")


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(initializer=wrong_shape), ["s/w", "returned shape (2,)", "(3,)", "Fix"]),
        (dict(initializer=js.initializers.orthogonal()), ["s/w", "at least two dims", "Fix"]),
        (dict(initializer=js.initializers.glorot_uniform), ["s/w", "factories", "Fix"]),
        (dict(initializer=refusing), ["s/w", "refused", "Fix"]),
    ],
    ids=["wrong_shape", "orthogonal_vector", "uncalled_factory", "refusing"],
)
def test_a_failing_initializer_in_a_layer_stack_is_an_initializer_error(kwargs, words, jitted):
    with pytest.raises(errors.InitializerError) as info:
        init_of(stack_of(shape=[D], **kwargs), jitted)(0, X)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_layer_stack_initialized_without_an_rng_is_a_missing_rng_error():
    with pytest.raises(errors.MissingRNGError, match="s/w") as info:
        js.transform(stack_of(shape=[D])).init(None, X)
    assert "jax.random.key" in str(info.value)


def test_a_concrete_initializer_built_inside_the_layers_is_an_initializer_error():
    def model(x):
        @js.layer_stack(2)
        def layer(x):
            return x * js.get_variable("w", initializer=jnp.ones(D) * x.sum())

        return layer(x)

    with pytest.raises(errors.InitializerError, match="inside a lifted transform") as info:
        js.transform(model).init(0, X)
    assert "Fix" in str(info.value)


_SHARDED = """
def model(x):
    @js.layer_stack(4)
    def layer(h):
        partitioner = js.sharding.shard_largest_axis("model", min_size=0)
        with js.variable_scope("block", partitioner=partitioner):
            v = js.get_variable("v", [8, 8])
            u = js.get_variable("u", [8], sharding=P("data"))
        return h @ v + u
    return layer(x)

f = js.transform(model)
x = jnp.ones((2, 8))
plain = js.flatten(jax.jit(f.init)(0, x))
with jax.set_mesh(mesh((2, 4), ("data", "model"))):
    sharded = js.flatten(jax.jit(f.init)(0, x))
emit({
    name: {
        "spec": spec_str(value.sharding.spec),
        "equal": bool(np.array_equal(np.asarray(value), np.asarray(plain[name]))),
    }
    for name, value in sharded.items()
})
"""


def test_partitioned_stacked_variables_are_born_sharded_with_the_unsharded_values():
    from tests.test_sharding import run_on_devices

    got = run_on_devices(_SHARDED)
    assert got == {
        "block/v": {"spec": str((None, None, "model")), "equal": True},
        "block/u": {"spec": str((None, "data")), "equal": True},
    }
