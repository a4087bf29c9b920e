"""Flax NNX interop: js.nnx_module mounts a flax.nnx.Module in a jaxscope
function, js.to_nnx wraps a jaxscope function as an nnx.Module. Each
direction is checked against the NNX module used natively with the same
weights (and the same keys for dropout): outputs, state updates and
gradients, eagerly and under jax.jit."""

from __future__ import annotations

import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxscope as js

from .conftest import assert_close, run_both

X = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)


def pure(state):
    return nnx.to_pure_dict(state)


def loss(y):
    return jnp.sum(jnp.sin(y) * jnp.arange(y.shape[-1]))


def snapshot(*modules):
    """The modules' variables as numpy arrays (keys as their key data)."""

    def as_numpy(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(as_numpy, [pure(nnx.state(m)) for m in modules])


def draw_in_scope(scope: str, rng: jax.Array) -> jax.Array:
    """The first key ``js.next_rng_key()`` gives in ``scope`` for ``rng``."""

    def draw():
        with js.variable_scope(scope):
            return js.next_rng_key()

    return js.transform(draw).apply({}, rng=rng)


# js.nnx_module: NNX modules inside jaxscope functions.


def test_linear_is_mounted_with_its_own_values_and_matches_nnx():
    linear = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

    def model(x):
        with js.variable_scope("encoder"):
            return js.nnx_module(linear)(x)

    run = run_both(model, X)
    assert_close(run.params, {"encoder": {"linear": pure(nnx.state(linear, nnx.Param))}})
    assert_close(run.out_jit, linear(X))


def test_linear_gradients_equal_nnx_grad():
    linear = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    f = js.transform(lambda x: js.nnx_module(linear)(x))
    params = f.init(0, X)
    grads, x_grad = jax.jit(jax.grad(lambda p, x: loss(f.apply(p, x)), argnums=(0, 1)))(params, X)
    native, native_x = nnx.grad(lambda m, x: loss(m(x)), argnums=(0, 1))(linear, X)
    assert_close(grads["linear"], pure(native))
    assert_close(x_grad, native_x)


def bn_model(bn):
    def model(x, train):
        return js.nnx_module(bn, name="bn")(x, use_running_average=not train)

    return js.transform_with_state(model)


def test_batch_norm_statistics_come_back_as_new_state_like_nnx():
    bn = nnx.BatchNorm(3, momentum=0.9, rngs=nnx.Rngs(0))
    f = bn_model(bn)
    params, state = f.init(0, X, True)
    assert sorted(js.flatten(params)) == ["bn/bias", "bn/scale"]
    assert sorted(js.flatten(state)) == ["bn/mean", "bn/var"]
    out, new_state = jax.jit(f.apply, static_argnums=3)(params, state, X, True)
    native = nnx.clone(bn)
    assert_close(out, native(X))
    assert_close(new_state["bn"], pure(nnx.state(native, nnx.BatchStat)))
    assert not np.allclose(new_state["bn"]["mean"], state["bn"]["mean"])
    # Inference reads the statistics and changes nothing.
    out, same = jax.jit(f.apply, static_argnums=3)(params, new_state, X, False)
    assert_close(same, new_state)
    assert_close(out, native(X, use_running_average=True))


def test_batch_norm_gradients_equal_nnx_grad():
    bn = nnx.BatchNorm(3, momentum=0.9, rngs=nnx.Rngs(0))
    f = bn_model(bn)
    params, state = f.init(0, X, True)

    @jax.jit
    def grads(params, state, x):
        return jax.grad(lambda p: loss(f.apply(p, state, x, True)[0]))(params)

    native = nnx.grad(lambda m: loss(m(X)))(nnx.clone(bn))
    assert_close(grads(params, state, X)["bn"], pure(native))


def test_batch_norm_needs_transform_with_state():
    bn = nnx.BatchNorm(3, rngs=nnx.Rngs(0))
    with pytest.raises(js.errors.StateInStatelessTransformError, match="transform_with_state"):
        js.transform(lambda x: js.nnx_module(bn)(x)).init(0, X)


def test_the_module_object_is_never_changed():
    bn = nnx.BatchNorm(3, momentum=0.5, rngs=nnx.Rngs(0))
    drop = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    before = snapshot(bn, drop)

    def model(x):
        return js.nnx_module(drop)(js.nnx_module(bn)(x))

    f = js.transform_with_state(model)
    params, state = f.init(0, X)
    f.apply(params, state, X, rng=jax.random.key(1))
    assert_close(snapshot(bn, drop), before)


def dropout_model(drop):
    return js.transform(lambda x: js.nnx_module(drop, name="dropout")(x))


def test_dropout_draws_its_key_from_next_rng_key_like_nnx():
    drop = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    f = dropout_model(drop)
    x, rng = jnp.arange(1.0, 33.0), jax.random.key(7)
    out = jax.jit(f.apply)({}, x, rng=rng)
    # The module's stream is seeded with the first key drawn in its scope.
    native = nnx.Dropout(0.5)(x, rngs=nnx.Rngs(dropout=draw_in_scope("dropout", rng)))
    assert_close(out, native)
    assert set(np.unique(np.asarray(out) / np.asarray(x))) == {0.0, 2.0}
    assert not np.allclose(out, f.apply({}, x, rng=jax.random.key(8)))


def test_dropout_gradients_equal_nnx_grad_with_the_same_key():
    drop = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    f = dropout_model(drop)
    rng = jax.random.key(3)
    grad = jax.jit(jax.grad(lambda x: loss(f.apply({}, x, rng=rng))))(X)
    key = draw_in_scope("dropout", rng)
    native = jax.grad(lambda x: loss(nnx.Dropout(0.5)(x, rngs=nnx.Rngs(dropout=key))))(X)
    assert_close(grad, native)


def test_dropout_without_an_rng_is_a_missing_rng_error():
    f = dropout_model(nnx.Dropout(0.5, rngs=nnx.Rngs(0)))
    with pytest.raises(js.errors.MissingRNGError, match="dropout.*rng=jax.random.key"):
        f.apply({}, X)


def test_a_deterministic_dropout_needs_no_rng():
    f = dropout_model(nnx.Dropout(0.5, deterministic=True, rngs=nnx.Rngs(0)))
    assert_close(jax.jit(f.apply)({}, X), X)


def test_a_module_in_js_scan_is_shared_across_steps_and_draws_per_step():
    cell = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
    drop = nnx.Dropout(0.5, rngs=nnx.Rngs(0))

    def rnn(xs):
        def step(h, x):
            h = jnp.tanh(js.nnx_module(cell, name="cell")(h + x))
            return h, (h, js.nnx_module(drop, name="drop")(jnp.ones(8)))

        return js.scan(step, jnp.zeros(3), xs)[1]

    f = js.transform(rnn)
    params = f.init(0, X)
    assert sorted(js.flatten(params)) == ["cell/bias", "cell/kernel"]
    hs, masks = jax.jit(f.apply)(params, X, rng=jax.random.key(0))
    h, expected = jnp.zeros(3), []
    for x in X:
        h = jnp.tanh(cell(h + x))
        expected.append(h)
    assert_close(hs, jnp.stack(expected))
    assert len({tuple(np.asarray(m).tolist()) for m in masks}) == len(X)


class Block(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.layers = nnx.List([nnx.Linear(4, 4, rngs=rngs) for _ in range(2)])

    def __call__(self, x):
        return self.layers[1](self.layers[0](self.bn(self.linear(x))))


def test_names_are_the_nnx_state_paths_under_the_mount_scope():
    block = Block(nnx.Rngs(0))
    f = js.transform_with_state(lambda x: js.nnx_module(block)(x))
    params, state = f.init(0, X)
    assert sorted(js.flatten(params)) == [
        "block/bn/bias",
        "block/bn/scale",
        "block/layers/0/bias",
        "block/layers/0/kernel",
        "block/layers/1/bias",
        "block/layers/1/kernel",
        "block/linear/bias",
        "block/linear/kernel",
    ]
    assert sorted(js.flatten(state)) == ["block/bn/mean", "block/bn/var"]
    out, _ = jax.jit(f.apply)(params, state, X)
    assert_close(out, nnx.clone(block)(X))


def test_default_names_are_uniquified_and_reuse_shares():
    linear = nnx.Linear(3, 3, rngs=nnx.Rngs(0))

    def model(x):
        h = js.nnx_module(linear)(js.nnx_module(linear)(x))
        with js.variable_scope("tied", reuse=js.AUTO_REUSE):
            return js.nnx_module(linear, name="d")(js.nnx_module(linear, name="d")(h))

    params = js.transform(model).init(0, X)
    assert sorted(params) == ["linear", "linear_1", "tied"]
    assert sorted(params["tied"]) == ["d"]


def test_apply_checks_the_mounted_variables_like_any_other():
    f = js.transform(lambda x: js.nnx_module(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))(x))
    params = f.init(0, X)
    with pytest.raises(js.errors.ShapeMismatchError, match="linear/kernel"):
        f.apply({"linear": {**params["linear"], "kernel": jnp.zeros((4, 2))}}, X)


def test_a_module_that_changes_a_param_is_an_assign_error():
    class Drifting(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.ones(3))

        def __call__(self, x):
            self.w[...] = self.w[...] + 1.0
            return x * self.w[...]

    f = js.transform(lambda x: js.nnx_module(Drifting(), name="drift")(x))
    with pytest.raises(js.errors.AssignError, match="drift/w.*Fix"):
        f.init(0, X)


def test_a_variable_that_is_not_an_array_is_rejected_with_its_path():
    class Empty(nnx.Module):
        def __init__(self):
            self.cache = nnx.Cache(None)

    with pytest.raises(js.errors.FlaxModuleTypeError, match="cache.*array"):
        js.nnx_module(Empty())


def test_the_two_flax_apis_name_each_others_bridge():
    with pytest.raises(js.errors.FlaxModuleTypeError, match=r"js\.nnx_module"):
        js.flax_module(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(js.errors.FlaxModuleTypeError, match=r"js\.flax_module"):
        js.nnx_module(linen.Dense(2))
    with pytest.raises(TypeError, match="flax.nnx.Module"):
        js.nnx_module(lambda x: x)


# js.to_nnx: jaxscope functions as NNX modules.


def dense(x):
    return js.nn.dense(x, 2, name="linear")


def test_to_nnx_params_are_the_jaxscope_tree_and_match_nnx_linear():
    module = js.to_nnx(dense, X, rngs=nnx.Rngs(0))
    params = pure(nnx.state(module, nnx.Param))
    assert_close(params, js.transform(dense).init(nnx.Rngs(0).params(), X))
    native = nnx.Linear(3, 2, rngs=nnx.Rngs(1))
    nnx.update(native, params["linear"])
    graphdef, state = nnx.split(module)
    out = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, X)
    assert_close(out, native(X))


def test_to_nnx_gradients_equal_nnx_linear():
    module = js.to_nnx(dense, X, rngs=nnx.Rngs(0))
    native = nnx.Linear(3, 2, rngs=nnx.Rngs(1))
    nnx.update(native, pure(nnx.state(module, nnx.Param))["linear"])
    grads = nnx.jit(nnx.grad(lambda m: loss(m(X))))(module)
    assert_close(pure(grads)["linear"], pure(nnx.grad(lambda m: loss(m(X)))(native)))


def batch_norm(x, train):
    bn = linen.BatchNorm(use_running_average=not train, momentum=0.9)
    return js.flax_module(bn, name="bn")(x)


def test_to_nnx_state_is_updated_in_place_like_nnx_batch_norm():
    module = js.to_nnx(batch_norm, X, True, rngs=nnx.Rngs(0))
    assert type(module.bn["mean"]) is nnx.BatchStat and type(module.bn["scale"]) is nnx.Param
    native = nnx.BatchNorm(3, momentum=0.9, rngs=nnx.Rngs(1))
    nnx.update(native, pure(nnx.state(module))["bn"])

    @nnx.jit(static_argnums=2)
    def call(m, x, train):
        return m(x, train)

    assert_close(call(module, X, True), native(X))
    assert_close(
        pure(nnx.state(module, nnx.BatchStat))["bn"], pure(nnx.state(native, nnx.BatchStat))
    )
    assert_close(call(module, X, False), native(X, use_running_average=True))
    grads = nnx.grad(lambda m: loss(m(X, True)))(module)
    assert_close(pure(grads)["bn"], pure(nnx.grad(lambda m: loss(m(X)))(native)))


def noisy(x):
    return js.nn.dropout(x, 0.5, is_training=True, name="dropout")


def test_to_nnx_dropout_draws_from_the_module_stream_like_nnx_dropout():
    module = js.to_nnx(noisy, X, rngs=nnx.Rngs(0, dropout=5))
    stream = nnx.clone(module.jaxscope__rngs)
    x = jnp.arange(1.0, 33.0)
    first, second = nnx.jit(lambda m, x: m(x))(module, x), module(x)
    assert not np.allclose(first, second)  # the stream advances as NNX's do
    for out in (first, second):
        key = draw_in_scope("dropout", stream())  # js.nn.dropout's key
        assert_close(out, nnx.Dropout(0.5)(x, rngs=key))


def test_to_nnx_dropout_gradients_equal_nnx_dropout():
    module = js.to_nnx(noisy, X, rngs=nnx.Rngs(0, dropout=5))
    key = draw_in_scope("dropout", nnx.clone(module.jaxscope__rngs)())
    grad = nnx.grad(lambda m, x: loss(m(x)), argnums=1)(module, X)
    assert_close(grad, jax.grad(lambda x: loss(nnx.Dropout(0.5)(x, rngs=key)))(X))


def test_to_nnx_without_an_rng_stream_says_how_to_give_one():
    module = js.to_nnx(noisy, X, rngs=nnx.Rngs(0), rng_stream=None)
    with pytest.raises(js.errors.MissingRNGError, match=r"nnx\.Rngs\(0, dropout=1\)"):
        module(X)


def test_to_nnx_refuses_names_nnx_module_uses():
    def model(x):
        with js.variable_scope("eval"):
            return js.nn.dense(x, 2)

    with pytest.raises(js.errors.NameConflictError, match="'eval'.*js.variable_scope"):
        js.to_nnx(model, X, rngs=nnx.Rngs(0))


def test_nnx_module_of_to_nnx_round_trips():
    inner = js.to_nnx(batch_norm, X, True, rngs=nnx.Rngs(0))
    f = js.transform_with_state(lambda x: js.nnx_module(inner, name="inner")(x, True))
    params, state = f.init(0, X)
    assert_close(params["inner"], pure(nnx.state(inner, nnx.Param)))
    assert_close(state["inner"], pure(nnx.state(inner, nnx.BatchStat)))
    out, new_state = jax.jit(f.apply)(params, state, X)
    expected, expected_state = js.transform_with_state(batch_norm).apply(
        params["inner"], state["inner"], X, True
    )
    assert_close((out, new_state["inner"]), (expected, expected_state))
