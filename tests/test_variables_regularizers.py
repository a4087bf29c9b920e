"""What ``js.get_variable`` records about a variable (DESIGN.md §3): its
regularization loss and its constraint.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxscope as js

from .conftest import paths, raises, run_both

# --- Regularizers -----------------------------------------------------------


def l2(v):
    return jnp.sum(v**2)


def test_regularization_loss_is_recorded_once_per_variable_per_call():
    def fn():
        with js.variable_scope("a", initializer=js.initializers.ones):
            js.get_variable("v", [3], regularizer=l2)
        for _ in range(2):
            with js.variable_scope("a", reuse=True):
                js.get_variable("v", [3], regularizer=l2)
        return js.get_regularization_losses()

    runs = run_both(fn)
    assert len(runs.out_init) == 1
    np.testing.assert_allclose(runs.out_jit[0], 3.0)


def test_regularization_losses_do_not_accumulate_across_calls():
    def fn():
        js.get_variable("v", [2], initializer=js.initializers.ones, regularizer=l2)
        return js.get_regularization_losses()

    f = js.transform(fn)
    params = f.init(0)
    assert len(f.apply(params)) == 1
    assert len(f.apply(params)) == 1


def test_regularization_losses_are_in_creation_order():
    def fn():
        js.get_variable("z", [1], initializer=js.initializers.constant(1.0), regularizer=l2)
        js.get_variable("a", [1], initializer=js.initializers.constant(2.0), regularizer=l2)
        js.get_variable("m", [1], initializer=js.initializers.constant(3.0), regularizer=l2)
        return js.get_regularization_losses()

    np.testing.assert_allclose(run_both(fn).out_jit, [1.0, 4.0, 9.0])


def test_regularization_loss_is_the_sum():
    def fn():
        js.get_variable("a", [2], initializer=js.initializers.ones, regularizer=l2)
        js.get_variable("b", [1], initializer=js.initializers.constant(3.0), regularizer=l2)
        return js.get_regularization_loss()

    np.testing.assert_allclose(run_both(fn).out_jit, 11.0)


def test_regularization_loss_is_zero_when_there_are_none():
    def fn():
        js.get_variable("v", [2])
        return js.get_regularization_loss(), js.get_regularization_losses()

    loss, losses = run_both(fn).out_jit
    assert losses == []
    assert float(loss) == 0.0


def test_regularizer_returning_none_adds_nothing():
    def fn():
        js.get_variable("v", [2], regularizer=lambda v: None)
        return js.get_regularization_losses()

    assert run_both(fn).out_jit == []


def test_regularizer_is_inherited_from_the_scope():
    def fn():
        with js.variable_scope("a", regularizer=l2, initializer=js.initializers.ones):
            js.get_variable("v", [4])
        return js.get_regularization_loss()

    np.testing.assert_allclose(run_both(fn).out_jit, 4.0)


def test_regularization_losses_for_a_reuse_first_obtained_in_apply():
    def infer():
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [2], regularizer=l2)
        return js.get_regularization_loss()

    np.testing.assert_allclose(js.transform(infer).apply({"a": {"v": jnp.ones(2)}}), 2.0)


def _encoder_model():
    with js.variable_scope("enc", initializer=js.initializers.ones):
        js.get_variable("w", [1], regularizer=l2)
    with js.variable_scope("encoder", initializer=js.initializers.constant(2.0)):
        js.get_variable("w", [1], regularizer=l2)
        with js.variable_scope("enc"):
            js.get_variable("w", [1], regularizer=l2)


def test_regularization_scope_filter_compares_whole_components():
    def fn():
        _encoder_model()
        return js.get_regularization_losses("enc"), js.get_regularization_losses("encoder")

    enc, encoder = run_both(fn).out_jit
    np.testing.assert_allclose(enc, [1.0])
    np.testing.assert_allclose(encoder, [4.0, 4.0])


def test_regularization_scope_filter_accepts_nested_paths():
    def fn():
        _encoder_model()
        return js.get_regularization_loss("encoder/enc")

    np.testing.assert_allclose(run_both(fn).out_jit, 4.0)


def test_regularization_scope_filter_accepts_a_variable_scope():
    def fn():
        with js.variable_scope("enc", initializer=js.initializers.ones) as enc:
            js.get_variable("w", [1], regularizer=l2)
        with js.variable_scope("encoder", initializer=js.initializers.ones):
            js.get_variable("w", [2], regularizer=l2)
        return js.get_regularization_losses(enc), js.get_regularization_loss(enc)

    losses, total = run_both(fn).out_jit
    np.testing.assert_allclose(losses, [1.0])
    np.testing.assert_allclose(total, 1.0)


def test_regularization_scope_filter_with_no_match_sums_to_zero():
    def fn():
        _encoder_model()
        return js.get_regularization_loss("decoder")

    assert float(run_both(fn).out_jit) == 0.0


# --- Constraints ------------------------------------------------------------


def clip_unit(v):
    return jnp.clip(v, -1.0, 1.0)


def _constrained_model():
    with js.variable_scope("a", initializer=js.initializers.constant(3.0)):
        w = js.get_variable("w", [2], constraint=clip_unit)
        b = js.get_variable("b", [2])
    with js.variable_scope("c", constraint=clip_unit, initializer=js.initializers.constant(3.0)):
        u = js.get_variable("u", [2])
    return w + b + u


def test_get_constraints_returns_the_constrained_paths():
    constraints = js.get_constraints(js.transform(_constrained_model), 0)
    assert paths(constraints) == ["a/w", "c/u"]
    assert constraints["a"]["w"] is clip_unit
    assert constraints["c"]["u"] is clip_unit


def test_constraint_does_not_change_the_value_get_variable_returns():
    runs = run_both(_constrained_model)
    np.testing.assert_array_equal(runs.out_jit, [9.0, 9.0])
    np.testing.assert_array_equal(runs.params["a"]["w"], [3.0, 3.0])


def test_apply_constraints_projects_only_constrained_variables():
    f = js.transform(_constrained_model)
    params = f.init(0)
    projected = js.apply_constraints(params, js.get_constraints(f, 0))
    np.testing.assert_array_equal(projected["a"]["w"], [1.0, 1.0])
    np.testing.assert_array_equal(projected["c"]["u"], [1.0, 1.0])
    np.testing.assert_array_equal(projected["a"]["b"], [3.0, 3.0])
    np.testing.assert_array_equal(params["a"]["w"], [3.0, 3.0])  # input untouched


def test_apply_constraints_naming_a_variable_the_params_lack_is_a_clear_error():
    params = {"a": {"w": jnp.full(2, 3.0)}}
    snapshot = jax.tree.map(np.asarray, params)
    calls = []

    def tracked_clip(v):
        calls.append(v)
        return clip_unit(v)

    constraints = {"a": {"w": clip_unit}, "c": {"u": tracked_clip}}
    with raises(js.errors.VariableMissingError, ValueError, "c/u", "Fix"):
        js.apply_constraints(params, constraints)
    assert calls == []  # never called with a missing value
    jax.tree.map(np.testing.assert_array_equal, params, snapshot)


def test_constraint_projection_keeps_optax_updates_in_the_constrained_set():
    f = js.transform(_constrained_model)
    params = jax.tree.map(jnp.zeros_like, f.init(0))
    opt = optax.chain(optax.sgd(1.0), js.constraint_projection(js.get_constraints(f, 0)))
    opt_state = opt.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, -5.0), params)  # pushes every leaf to +5
    updates, _ = jax.jit(opt.update)(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new_params["a"]["w"], [1.0, 1.0])
    np.testing.assert_allclose(new_params["c"]["u"], [1.0, 1.0])
    np.testing.assert_allclose(new_params["a"]["b"], [5.0, 5.0])
