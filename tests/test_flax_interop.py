"""Flax interop (DESIGN §7): js.flax_module mounts a flax.linen.Module in a
jaxscope function, js.to_flax wraps a jaxscope function as a flax Module;
both directions agree numerically with flax itself, in init and jitted apply,
and params trees work with flax's and optax's tools unchanged."""

from __future__ import annotations

import functools

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util
from flax.training import train_state

import jaxscope as js

from .conftest import assert_close

X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)), jnp.float32)
XS = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2, 3)), jnp.float32)
UNITS = 4


def zero_carry():
    return (jnp.zeros((2, UNITS)), jnp.zeros((2, UNITS)))


# js.flax_module: flax modules inside jaxscope functions.


def test_dense_is_mounted_under_the_scope_and_matches_flax(both):
    def model(x):
        with js.variable_scope("encoder"):
            return js.flax_module(nn.Dense(UNITS))(x)

    run = both(model, X)
    assert jax.tree.map(jnp.shape, run.params) == {
        "encoder": {"dense": {"bias": (UNITS,), "kernel": (3, UNITS)}}
    }
    direct = nn.Dense(UNITS).apply({"params": run.params["encoder"]["dense"]}, X)
    assert_close(run.out_jit, direct)


def test_lstm_cell_scanned_over_time_matches_flax_step_by_step(both):
    def rnn(xs):
        def step(carry, x):
            return js.flax_module(nn.LSTMCell(UNITS), name="cell")(carry, x)

        return js.scan(step, zero_carry(), xs)[1]

    run = both(rnn, XS)
    assert sorted(run.params["cell"]) == ["hf", "hg", "hi", "ho", "if", "ig", "ii", "io"]
    cell, variables, carry = nn.LSTMCell(UNITS), {"params": run.params["cell"]}, zero_carry()
    expected = []
    for x in XS:
        carry, y = cell.apply(variables, carry, x)
        expected.append(y)
    assert_close(run.out_jit, jnp.stack(expected))


def test_batch_norm_stats_are_state_updated_like_flax(both):
    def model(x, train):
        return js.flax_module(nn.BatchNorm(use_running_average=not train, momentum=0.9))(x)

    f = js.transform_with_state(model)
    params, state = f.init(0, X, True)
    assert sorted(params["batch_norm"]) == ["bias", "scale"]
    assert sorted(state["batch_norm"]) == ["mean", "var"]
    out, new_state = jax.jit(f.apply, static_argnums=3)(params, state, X, True)
    flax_vars = {"params": params["batch_norm"], "batch_stats": state["batch_norm"]}
    flax_out, updates = nn.BatchNorm(use_running_average=False, momentum=0.9).apply(
        flax_vars, X, mutable=["batch_stats"]
    )
    assert_close(out, flax_out)
    assert_close(new_state["batch_norm"], updates["batch_stats"])
    assert not np.allclose(new_state["batch_norm"]["mean"], state["batch_norm"]["mean"])
    # In inference the stats are read, not written.
    out, same = f.apply(params, new_state, X, False)
    assert_close(same, new_state)
    flax_vars = {"params": params["batch_norm"], "batch_stats": new_state["batch_norm"]}
    assert_close(out, nn.BatchNorm(use_running_average=True).apply(flax_vars, X))
    both(lambda x: model(x, False), X, with_state=True)


def test_default_names_are_snake_case_and_uniquified():
    def model(x):
        h = js.flax_module(nn.Dense(3))(x)
        h = js.flax_module(nn.Dense(3))(h)
        h = js.flax_module(nn.Dense(3, name="proj"))(h)
        h = js.flax_module(nn.LayerNorm())(h)
        return js.flax_module(nn.Dense(3), name="out")(h)

    params = js.transform(model).init(0, X)
    assert sorted(params) == ["dense", "dense_1", "layer_norm", "out", "proj"]


def test_reuse_flags_apply_to_flax_variables():
    def shared(x):
        with js.variable_scope("tower", reuse=js.AUTO_REUSE):
            a = js.flax_module(nn.Dense(3), name="d")(x)
            b = js.flax_module(nn.Dense(3), name="d")(x)
        return a, b

    f = js.transform(shared)
    params = f.init(0, X)
    assert sorted(params["tower"]) == ["d"]
    a, b = jax.jit(f.apply)(params, X)
    assert_close(a, b)

    def unshared(x):
        js.flax_module(nn.Dense(3), name="d")(x)
        return js.flax_module(nn.Dense(3), name="d")(x)

    with pytest.raises(js.errors.VariableExistsError, match="d/bias"):
        js.transform(unshared).init(0, X)

    def reuse_only(x):
        return js.flax_module(nn.Dense(3), name="d", reuse=True)(x)

    with pytest.raises(js.errors.VariableMissingError, match="d/bias"):
        js.transform(reuse_only).init(0, X)
    out = js.transform(reuse_only).apply({"d": params["tower"]["d"]}, X)
    assert_close(out, a)


def test_apply_checks_the_flax_variables_like_any_other():
    f = js.transform(lambda x: js.flax_module(nn.Dense(3), name="d")(x))
    params = f.init(0, X)
    with pytest.raises(js.errors.VariableMissingError, match="d/kernel"):
        f.apply({"d": {"bias": params["d"]["bias"]}}, X)
    params["d"]["kernel"] = jnp.zeros((4, 3))
    with pytest.raises(js.errors.ShapeMismatchError, match="d/kernel"):
        f.apply(params, X)


def test_init_values_depend_on_the_rng_and_the_name_only():
    def model(x, extra):
        if extra:
            js.get_variable("before", [7])
        with js.variable_scope("enc"):
            return js.flax_module(nn.Dense(3))(x), js.flax_module(nn.Dense(3))(x)

    f = js.transform(model)
    plain, extended = f.init(0, X, False), f.init(0, X, True)
    assert_close(plain["enc"], extended["enc"])
    dense, dense_1 = plain["enc"]["dense"]["kernel"], plain["enc"]["dense_1"]["kernel"]
    assert not np.allclose(dense, dense_1)
    assert not np.allclose(dense, f.init(1, X, False)["enc"]["dense"]["kernel"])


def test_scan_gives_the_initial_values_of_the_unrolled_loop():
    def scanned(xs):
        def step(carry, x):
            return js.flax_module(nn.LSTMCell(UNITS), name="cell")(carry, x)

        return js.scan(step, zero_carry(), xs)[1]

    def unrolled(xs):
        carry = zero_carry()
        cell = js.flax_module(nn.LSTMCell(UNITS), name="cell", reuse=js.AUTO_REUSE)
        for x in xs:
            carry, y = cell(carry, x)
        return y

    assert_close(js.transform(scanned).init(0, XS), js.transform(unrolled).init(0, XS))


def test_layer_stack_layers_get_different_initial_values():
    def model(x):
        def layer(h):
            return jnp.tanh(js.flax_module(nn.Dense(3), name="d")(h))

        return js.layer_stack(3)(layer)(x)

    f = js.transform(model)
    params = f.init(0, X)
    kernels = params["d"]["kernel"]
    assert kernels.shape == (3, 3, 3)
    assert not np.allclose(kernels[0], kernels[1])
    expected = X
    for i in range(3):
        layer = jax.tree.map(lambda a, i=i: a[i], params["d"])
        expected = jnp.tanh(nn.Dense(3).apply({"params": layer}, expected))
    assert_close(jax.jit(f.apply)(params, X), expected)


def test_rng_streams_come_from_next_rng_key():
    def model(x):
        return js.flax_module(nn.Dropout(0.5, deterministic=False), rngs=("dropout",))(x)

    f = js.transform(model)
    x = jnp.ones(64)
    a = jax.jit(f.apply)({}, x, rng=jax.random.key(1))
    b = f.apply({}, x, rng=jax.random.key(1))
    c = f.apply({}, x, rng=jax.random.key(2))
    assert_close(a, b)
    assert set(np.unique(np.asarray(a))) == {0.0, 2.0}
    assert not np.allclose(a, c)
    with pytest.raises(js.errors.MissingRNGError, match="rng=jax.random.key"):
        f.apply({}, x)


def test_summary_lists_flax_variables_without_computing_them():
    f = js.transform_with_state(lambda x: js.flax_module(nn.BatchNorm(True))(x))
    rows = {row.name: row for row in js.summary(f, 0, X).rows}
    assert rows["batch_norm/scale"].trainable and not rows["batch_norm/mean"].trainable


def test_bound_or_non_module_arguments_are_rejected():
    with pytest.raises(js.errors.FlaxModuleTypeError, match="flax.linen.Module"):
        js.flax_module(lambda x: x)
    with pytest.raises(ValueError, match="'params' stream"):
        js.flax_module(nn.Dense(3), rngs=("params",))


# js.to_flax: jaxscope functions as flax modules.


def mlp(x):
    h = js.nn.dense(x, UNITS, jax.nn.relu, name="hidden")
    return js.nn.dense(h, 2, name="out")


def test_to_flax_params_are_the_jaxscope_tree_and_outputs_agree():
    module = js.to_flax(mlp)
    variables = module.init(jax.random.key(0), X)
    f = js.transform(mlp)
    assert jax.tree.map(jnp.shape, variables) == {"params": jax.tree.map(jnp.shape, f.init(0, X))}
    assert_close(jax.jit(module.apply)(variables, X), f.apply(variables["params"], X))
    assert_close(js.to_flax(f).apply(variables, X), f.apply(variables["params"], X))


def test_to_flax_lstm_inside_a_flax_model():
    def encoder(xs):
        def step(state, x):
            h, state = js.nn.lstm_cell(x, state)
            return state, h

        return js.scan(step, js.nn.LSTMState.zeros(xs.shape[1], UNITS), xs)[1]

    class Model(nn.Module):
        @nn.compact
        def __call__(self, xs):
            hs = js.to_flax(encoder, name="encoder")(xs)
            return nn.Dense(2, name="head")(hs[-1])

    variables = Model().init(jax.random.key(0), XS)
    params = variables["params"]
    assert jax.tree.map(jnp.shape, params["encoder"]) == {
        "lstm_cell": {"bias": (4 * UNITS,), "kernel": (3 + UNITS, 4 * UNITS)}
    }
    out = jax.jit(Model().apply)(variables, XS)
    hs = js.transform(encoder).apply(params["encoder"], XS)
    assert_close(out, nn.Dense(2).apply({"params": params["head"]}, hs[-1]))


def test_to_flax_module_called_twice_shares_its_params():
    def layer(h):
        return jnp.tanh(js.nn.dense(h, 3, name="d"))

    class Twice(nn.Module):
        @nn.compact
        def __call__(self, x):
            block = js.to_flax(layer, name="block")
            return block(block(x))

    variables = Twice().init(jax.random.key(0), X)
    params = variables["params"]["block"]
    assert jax.tree.map(jnp.shape, params) == {"d": {"bias": (3,), "kernel": (3, 3)}}
    f = js.transform(layer)
    expected = f.apply(params, f.apply(params, X))
    assert_close(Twice().apply(variables, X), expected)
    assert_close(Twice().init_with_output(jax.random.key(0), X)[0], expected)


def test_to_flax_state_is_a_separate_mutable_collection():
    def normed(x):
        return js.flax_module(nn.BatchNorm(use_running_average=False, momentum=0.9))(x)

    module = js.to_flax(normed, state_collection="batch_stats")
    variables = module.init(jax.random.key(0), X)
    assert sorted(variables) == ["batch_stats", "params"]
    out, updates = jax.jit(functools.partial(module.apply, mutable=["batch_stats"]))(variables, X)
    flax_vars = {
        "params": variables["params"]["batch_norm"],
        "batch_stats": variables["batch_stats"]["batch_norm"],
    }
    flax_out, flax_updates = nn.BatchNorm(use_running_average=False, momentum=0.9).apply(
        flax_vars, X, mutable=["batch_stats"]
    )
    assert_close(out, flax_out)
    assert_close(updates["batch_stats"]["batch_norm"], flax_updates["batch_stats"])
    with pytest.raises(flax.errors.ModifyScopeVariableError):
        module.apply(variables, X)  # like flax's own BatchNorm: updates need mutable


def test_to_flax_init_returns_the_initial_state_as_flax_modules_do():
    def counted(x):
        with js.variable_scope("stats"):
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)
        return js.flax_module(nn.BatchNorm(use_running_average=False, momentum=0.9))(x)

    variables = js.to_flax(counted, state_collection="batch_stats").init(jax.random.key(0), X)
    assert int(variables["batch_stats"]["stats"]["count"]) == 0
    flax_vars = nn.BatchNorm(use_running_average=False, momentum=0.9).init(jax.random.key(0), X)
    assert_close(variables["batch_stats"]["batch_norm"], flax_vars["batch_stats"])
    initial = js.transform_with_state(counted).init(0, X)[1]
    assert_close(variables["batch_stats"], initial)


def test_to_flax_feeds_next_rng_key_from_the_dropout_stream():
    def noisy(x):
        return js.nn.dense(x, 3, name="d") + jax.random.normal(js.next_rng_key(), (3,))

    module = js.to_flax(noisy)
    variables = module.init(jax.random.key(0), X)
    apply = jax.jit(module.apply)
    a = apply(variables, X, rngs={"dropout": jax.random.key(5)})
    assert_close(a, module.apply(variables, X, rngs={"dropout": jax.random.key(5)}))
    assert not np.allclose(a, apply(variables, X, rngs={"dropout": jax.random.key(6)}))
    with pytest.raises(js.errors.MissingRNGError, match="no rng was given"):
        module.apply(variables, X)


def test_flax_module_of_to_flax_round_trips():
    def wrapped(x):
        return js.flax_module(js.to_flax(mlp), name="inner")(x)

    run_params = js.transform(wrapped).init(0, X)
    assert jax.tree.map(jnp.shape, run_params["inner"]) == jax.tree.map(
        jnp.shape, js.transform(mlp).init(0, X)
    )
    assert_close(
        jax.jit(js.transform(wrapped).apply)(run_params, X),
        js.transform(mlp).apply(run_params["inner"], X),
    )


# Params trees in flax's and optax's tools.


def test_params_round_trip_through_flax_serialization():
    f = js.transform_with_state(
        lambda x: js.flax_module(nn.BatchNorm(True))(js.nn.dense(x, 3, name="d"))
    )
    params, state = f.init(0, X)
    data = flax.serialization.to_bytes({"params": params, "state": state})
    template = jax.tree.map(jnp.zeros_like, {"params": params, "state": state})
    restored = flax.serialization.from_bytes(template, data)
    assert_close(restored, {"params": params, "state": state})
    assert jax.tree.structure(restored["params"]) == jax.tree.structure(params)
    out, _ = f.apply(restored["params"], restored["state"], X)
    assert_close(out, f.apply(params, state, X)[0])


def test_traverse_util_flattens_to_the_tf1_names():
    params = js.transform(mlp).init(0, X)
    flat = traverse_util.flatten_dict(params, sep="/")
    assert flat == js.flatten(params)
    assert traverse_util.unflatten_dict(flat, sep="/") == params
    masked = traverse_util.path_aware_map(lambda path, _: path[-1] == "kernel", params)
    assert masked == {
        "hidden": {"bias": False, "kernel": True},
        "out": {"bias": False, "kernel": True},
    }


def test_train_state_and_optax_train_the_params_unchanged():
    f = js.transform(mlp)
    params = f.init(0, X)
    decay_mask = traverse_util.path_aware_map(lambda path, _: path[-1] == "kernel", params)
    tx = optax.adamw(1e-2, weight_decay=1e-3, mask=decay_mask)
    state = train_state.TrainState.create(apply_fn=f.apply, params=params, tx=tx)
    target = jnp.ones((2, 2))

    @jax.jit
    def train_step(state):
        def loss(p):
            return jnp.mean((state.apply_fn(p, X) - target) ** 2)

        value, grads = jax.value_and_grad(loss)(state.params)
        return state.apply_gradients(grads=grads), value

    losses = []
    for _ in range(5):
        state, value = train_step(state)
        losses.append(float(value))
    assert losses[-1] < losses[0]
    assert jax.tree.structure(state.params) == jax.tree.structure(params)
    assert int(state.step) == 5
