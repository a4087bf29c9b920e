"""``trainable=False`` variables and ``js.assign`` (DESIGN.md §3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import MODES, paths, raises, run_both, run_in

ONE = jnp.ones((1,), jnp.float32)


# --- State and js.assign ----------------------------------------------------


def _counter():
    with js.variable_scope("stats"):
        n = js.get_variable("n", [], jnp.int32, trainable=False)
        js.assign("n", n + 1)
    with js.variable_scope("stats", reuse=True):
        return js.get_variable("n")


def test_non_trainable_variables_live_in_state():
    def fn():
        js.get_variable("w", [1])
        js.get_variable("count", [], jnp.int32, trainable=False)

    runs = run_both(fn, with_state=True)
    assert paths(runs.params) == ["w"]
    assert paths(runs.state) == ["count"]


def test_transform_rejects_non_trainable_variables_naming_transform_with_state():
    def fn():
        js.get_variable("count", [], jnp.int32, trainable=False)

    with raises(
        js.errors.StateInStatelessTransformError, RuntimeError, "count", "transform_with_state"
    ):
        js.transform(fn).init(0)


def test_later_reads_see_the_assigned_value():
    def fn():
        with js.variable_scope("stats"):
            n = js.get_variable("n", [], jnp.int32, trainable=False)
            js.assign("n", n + 5)
        with js.variable_scope("stats", reuse=True):
            return js.get_variable("n", [])

    runs = run_both(fn, with_state=True)
    assert int(runs.out_init) == 5
    assert int(runs.out_jit) == 5


def test_init_returns_initial_state_values_not_assigned_ones():
    f = js.transform_with_state(_counter)
    _, state = f.init(0)
    assert int(state["stats"]["n"]) == 0


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_apply_returns_the_updated_state(jit):
    f = js.transform_with_state(_counter)
    params, state = f.init(0)
    apply = jax.jit(f.apply) if jit else f.apply
    for expected in (1, 2, 3):
        out, state = apply(params, state)
        assert int(out) == expected
        assert int(state["stats"]["n"]) == expected


def test_apply_returns_unassigned_state_unchanged():
    def fn():
        js.get_variable("kept", [2], trainable=False)
        n = js.get_variable("n", [], jnp.int32, trainable=False)
        js.assign("n", n + 1)

    f = js.transform_with_state(fn)
    params, state = f.init(0)
    _, new_state = jax.jit(f.apply)(params, state)
    np.testing.assert_array_equal(new_state["kept"], state["kept"])
    assert int(new_state["n"]) == 1


def test_assign_name_is_relative_to_the_current_scope():
    def fn():
        with js.variable_scope("bn"):
            js.get_variable("mean", [2], trainable=False, initializer=js.initializers.zeros)
        with js.variable_scope("bn"):
            js.assign("mean", jnp.full((2,), 4.0))

    f = js.transform_with_state(fn)
    params, state = f.init(0)
    _, state = f.apply(params, state)
    np.testing.assert_array_equal(state["bn"]["mean"], [4.0, 4.0])


def test_assign_accepts_a_python_scalar():
    def fn():
        js.get_variable("v", [], jnp.float32, trainable=False)
        js.assign("v", 2.5)

    f = js.transform_with_state(fn)
    _, state = f.apply(*f.init(0))
    assert float(state["v"]) == 2.5


@pytest.mark.parametrize("mode", MODES)
def test_assign_to_a_trainable_variable_is_an_error(mode):
    def fn():
        with js.variable_scope("a"):
            w = js.get_variable("w", [1])
            js.assign("w", w + 1)

    with raises(js.errors.AssignError, ValueError, "a/w", "trainable"):
        run_in(mode, fn, {"a": {"w": ONE}})


@pytest.mark.parametrize("mode", MODES)
def test_assign_to_a_missing_variable_is_an_error(mode):
    def fn():
        with js.variable_scope("a"):
            js.assign("n", jnp.zeros(()))

    with raises(js.errors.AssignError, ValueError, "a/n"):
        run_in(mode, fn)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (jnp.zeros((3,), jnp.float32), ("(2,)", "(3,)")),
        (jnp.zeros((2,), jnp.int32), ("float32", "int32")),
    ],
    ids=["shape", "dtype"],
)
def test_assign_of_a_wrong_shape_or_dtype_is_an_error(value, words):
    def fn():
        js.get_variable("v", [2], trainable=False)
        js.assign("v", value)

    with raises(js.errors.AssignError, ValueError, "v", *words):
        js.transform_with_state(fn).init(0)
