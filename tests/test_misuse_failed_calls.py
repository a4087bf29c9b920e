"""What a failed call leaves behind: nothing. The next call works from a clean
slate, and the caller's trees are untouched.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .misuse import RAW, X, dense_layer, in_scope, leave_open, run_twice, scope_of

# --- Bugs outside the catalogue ----------------------------------------------------


def test_next_rng_key_first_drawn_inside_a_raw_scan_does_not_leak_a_tracer():
    def model(xs):
        def step(carry, x):
            return carry + jax.random.normal(js.next_rng_key()), None

        carry, _ = jax.lax.scan(step, 0.0, xs)
        return carry + jax.random.normal(js.next_rng_key())

    out = js.transform(model).apply({}, jnp.ones(3), rng=0)
    assert out.shape == ()


# --- A call that fails leaves nothing behind ---------------------------------------


def _raises_midway(boom: bool):
    with js.variable_scope("outer"):
        with js.name_scope("ops"):
            with js.variable_scope(None, default_name="layer") as scope:
                js.get_variable("w", [2])
                if boom:
                    raise KeyError("boom")
    return scope.name


def _name_stack_after(failing_call, error):
    """The op-name stack of an op traced right after ``failing_call`` raised
    ``error`` in the same trace."""

    def traced(x):
        with pytest.raises(error):
            failing_call()
        return jnp.sin(x)

    (sin,) = [e for e in jax.make_jaxpr(traced)(1.0).eqns if e.primitive.name == "sin"]
    return str(sin.source_info.name_stack)


def test_an_exception_from_fn_reaches_the_caller_unchanged():
    with pytest.raises(KeyError, match="boom"):
        js.transform(_raises_midway).init(0, True)


def test_the_call_after_a_raise_can_create_the_same_names_again():
    f = js.transform(_raises_midway)
    with pytest.raises(KeyError):
        f.init(0, True)
    assert js.flatten(f.init(0, False)).keys() == {"outer/layer/w"}


def test_the_call_after_a_raise_numbers_default_names_afresh():
    f = js.transform(_raises_midway)
    outputs = []
    g = js.transform(lambda: outputs.append(_raises_midway(False)))
    with pytest.raises(KeyError):
        f.init(0, True)
    g.init(0)
    assert outputs == ["outer/layer"]


def test_no_call_is_active_after_a_raise():
    with pytest.raises(KeyError):
        js.transform(_raises_midway).init(0, True)
    with pytest.raises(errors.NoTransformError):
        js.get_variable_scope()


def test_no_op_name_scope_is_left_open_after_a_raise():
    f = js.transform(_raises_midway)
    tree = {"outer": {"layer": {"w": jnp.ones(2)}}}
    assert _name_stack_after(lambda: f.apply(tree, True), KeyError) == ""


def test_no_op_name_scope_is_left_open_after_scopes_left_open():
    f = js.transform(leave_open(lambda: js.name_scope("ops").__enter__()))
    assert _name_stack_after(lambda: f.init(0), errors.ScopeNestingError) == ""


def test_no_op_name_scope_is_left_open_after_a_scope_error_inside_nested_scopes():
    def model():
        with js.variable_scope("outer"), js.name_scope("ops"), js.variable_scope("inner"):
            js.get_variable("w", [1])
            js.get_variable("w", [1])

    f = js.transform(model)
    assert _name_stack_after(lambda: f.init(0), errors.VariableExistsError) == ""


def test_the_call_after_a_raise_inside_a_lifted_body_works():
    def model(xs, boom):
        def step(carry, x):
            w = js.get_variable("w", [])
            if boom:
                raise KeyError("boom")
            return carry * w, None

        with js.variable_scope("rnn"):
            return js.scan(step, 1.0, xs)[0]

    f = js.transform(model)
    with pytest.raises(KeyError):
        f.init(0, jnp.ones(3), True)
    params = f.init(0, jnp.ones(3), False)
    assert js.flatten(params).keys() == {"rnn/w"}
    with pytest.raises(errors.NoTransformError):
        js.get_variable_scope()


def test_the_call_after_a_raw_transform_error_is_jittable():
    f = js.transform(RAW["scan"])
    with pytest.raises(errors.RawTransformError):
        f.init(0, 1.0)
    params = {"rnn": {"cell": {"w": jnp.full((), 2.0)}}}
    good = js.transform(lambda x: x * js.get_variable("rnn/cell/w", []))
    assert float(jax.jit(good.apply)(params, 3.0)) == 6.0


# --- A failed call leaves the caller's trees untouched --------------------------------


def _snapshot(tree):
    """Every dict of ``tree`` by path, with its items (leaves by identity)."""
    nodes = {}

    def walk(node, path):
        nodes[path] = (id(node), list(node.items()))
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{path}/{key}")

    walk(tree, "")
    return nodes


def assert_untouched(tree, snapshot):
    now = _snapshot(tree)
    assert now.keys() == snapshot.keys()
    for path, (node_id, items) in snapshot.items():
        now_id, now_items = now[path]
        assert now_id == node_id
        assert len(now_items) == len(items)
        for (key, value), (now_key, now_value) in zip(items, now_items, strict=True):
            assert key == now_key and value is now_value


def _fresh_params():
    return {
        "dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
        "head": {"w": jnp.ones(2)},
    }


def _reads_then_fails(error):
    def model(x):
        dense_layer(x)
        with js.variable_scope("head"):
            js.get_variable("w", [2])
        raise error

    return model


@pytest.mark.parametrize(
    "model, check_unused",
    [
        pytest.param(_reads_then_fails(KeyError("boom")), False, id="fn_raises"),
        pytest.param(
            run_twice(
                lambda: dense_layer(X),
                in_scope(scope_of("head"), lambda: js.get_variable("w", [3])),
            ),
            False,
            id="shape_mismatch",
        ),
        pytest.param(
            run_twice(
                lambda: dense_layer(X),
                in_scope(scope_of("head"), lambda: js.get_variable("v", [2])),
            ),
            False,
            id="missing_variable",
        ),
        pytest.param(lambda x: dense_layer(x), True, id="unused_variable"),
    ],
)
def test_a_failed_apply_leaves_the_params_tree_untouched(model, check_unused):
    params = _fresh_params()
    snapshot = _snapshot(params)
    with pytest.raises(Exception):  # noqa: B017 - the kinds are the parameters
        js.transform(model, check_unused=check_unused).apply(params, X)
    assert_untouched(params, snapshot)


def test_a_failed_apply_after_an_assign_leaves_the_state_tree_untouched():
    def model():
        with js.variable_scope("bn"):
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)
        raise KeyError("boom")

    params, state = {}, {"bn": {"count": jnp.zeros((), jnp.int32)}}
    params_snapshot, state_snapshot = _snapshot(params), _snapshot(state)
    with pytest.raises(KeyError):
        js.transform_with_state(model).apply(params, state)
    assert_untouched(params, params_snapshot)
    assert_untouched(state, state_snapshot)
    assert int(state["bn"]["count"]) == 0


def test_a_successful_apply_returns_new_state_without_mutating_the_given_one():
    def model():
        with js.variable_scope("bn"):
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)

    state = {"bn": {"count": jnp.zeros((), jnp.int32)}, "other": {"x": jnp.ones(1)}}
    snapshot = _snapshot(state)
    _, new_state = js.transform_with_state(model).apply({}, state)
    assert_untouched(state, snapshot)
    assert int(new_state["bn"]["count"]) == 1
    assert new_state["other"]["x"] is state["other"]["x"]


def test_a_failed_init_leaves_the_callers_inputs_untouched():
    inputs = {"x": jnp.ones((1, 3)), "nested": {"y": np.zeros(2)}}
    snapshot = _snapshot(inputs)

    def model(inputs):
        dense_layer(inputs["x"])
        js.get_variable("dense/kernel", [3, 2])  # created twice

    with pytest.raises(errors.VariableExistsError):
        js.transform(model).init(0, inputs)
    assert_untouched(inputs, snapshot)
