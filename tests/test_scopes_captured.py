"""Captured ``VariableScope`` objects re-entered later (DESIGN §2), in
``init``, eager ``apply`` and jitted ``apply``.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import observe, paths, scope_state

const = js.initializers.constant


# --- Captured scopes --------------------------------------------------------------


def test_captured_scope_reentry_jumps_to_its_name_from_anywhere():
    def program(seen):
        with js.variable_scope("a"):
            with js.variable_scope("b") as captured:
                pass
        with js.variable_scope("x"):
            with js.variable_scope("y"):
                with js.variable_scope(captured) as entered:
                    seen.append(entered.name)
                    seen.append(js.get_variable_scope().name)
                    js.get_variable("v", [1])
                    with js.variable_scope("c"):
                        js.get_variable("w", [1])
                seen.append(js.get_variable_scope().name)

    runs, seen = observe(program)
    assert seen == ["a/b", "a/b", "x/y"]
    assert paths(runs.params) == ["a/b/c/w", "a/b/v"]


def test_captured_scope_reentry_uses_its_own_reuse_flag_not_the_current_nestings():
    def program(seen):
        with js.variable_scope("own") as own:
            pass
        with js.variable_scope("elsewhere"):
            js.get_variable("e", [1])
        with js.variable_scope("elsewhere", reuse=True):
            with js.variable_scope(own):
                seen.append(scope_state())
                js.get_variable("v", [1])  # created: own's reuse is False

    runs, seen = observe(program)
    assert seen == [("own", False)]
    assert paths(runs.params) == ["elsewhere/e", "own/v"]


def test_captured_reusing_scope_stays_reusing_when_entered_from_a_plain_scope():
    def program(seen):
        with js.variable_scope("own"):
            v = js.get_variable("v", [1])
        with js.variable_scope("own", reuse=True) as own_reusing:
            pass
        with js.variable_scope("plain"):
            with js.variable_scope(own_reusing):
                seen.append(scope_state())
                assert js.get_variable("v", [1]) is v

    _, seen = observe(program)
    assert seen == [("own", True)]


def test_captured_scope_reentry_uses_its_own_initializer_and_dtype():
    def program(seen):
        with js.variable_scope("own", initializer=const(0.1), dtype=jnp.bfloat16) as own:
            pass
        with js.variable_scope("elsewhere", initializer=const(0.9), dtype=jnp.float16):
            with js.variable_scope(own) as entered:
                seen.append(jnp.dtype(entered.dtype))
                return js.get_variable("v", [2])

    runs, seen = observe(program)
    assert seen == [jnp.dtype(jnp.bfloat16)]
    v = runs.params["own"]["v"]
    assert v.dtype == jnp.bfloat16
    np.testing.assert_allclose(v.astype(jnp.float32), [0.1, 0.1], rtol=1e-2)


def test_captured_scope_reentry_arguments_override_its_settings():
    def program(seen):
        with js.variable_scope("own", initializer=const(0.1)) as own:
            v = js.get_variable("v", [1])
        with js.variable_scope(own, reuse=True) as reusing:
            seen.append(scope_state(reusing))
            assert js.get_variable("v", [1]) is v
        with js.variable_scope(own, reuse=js.AUTO_REUSE, initializer=const(0.7)) as auto:
            seen.append(scope_state(auto))
            assert js.get_variable("v", [1]) is v
            js.get_variable("w", [1])
        seen.append(scope_state(own))

    runs, seen = observe(program)
    assert seen == [("own", True), ("own", js.AUTO_REUSE), ("own", False)]
    np.testing.assert_allclose(runs.params["own"]["v"], [0.1])
    np.testing.assert_allclose(runs.params["own"]["w"], [0.7])


def test_captured_scope_reentry_with_reuse_false_keeps_its_reuse_flag():
    def program(seen):
        with js.variable_scope("own"):
            js.get_variable("v", [1])
            js.get_variable_scope().reuse_variables()
            captured = js.get_variable_scope()
        with js.variable_scope(captured, reuse=False):
            seen.append(scope_state())
            js.get_variable("v", [1])

    _, seen = observe(program)
    assert seen == [("own", True)]


def test_set_calls_inside_a_reentered_scope_do_not_change_the_captured_object():
    def program(seen):
        with js.variable_scope("own", initializer=const(0.1)) as own:
            pass
        with js.variable_scope(own) as entered:
            assert entered is not own
            entered.set_initializer(const(0.7))
            entered.set_dtype(jnp.bfloat16)
            entered.reuse_variables()
        seen.append((own.reuse, jnp.dtype(own.dtype)))
        with js.variable_scope(own):
            seen.append(scope_state())
            return js.get_variable("v", [1])  # created with own's settings

    runs, seen = observe(program)
    assert seen == [(False, jnp.dtype(jnp.float32)), ("own", False)]
    assert runs.params["own"]["v"].dtype == jnp.float32
    np.testing.assert_allclose(runs.params["own"]["v"], [0.1])


def test_set_calls_on_the_captured_object_affect_later_entries():
    def program(seen):
        with js.variable_scope("own") as own:
            pass
        own.set_initializer(const(0.3))
        with js.variable_scope(own):
            seen.append(scope_state())
            v = js.get_variable("v", [1])
        own.reuse_variables()
        with js.variable_scope(own):
            seen.append(scope_state())
            assert js.get_variable("v", [1]) is v
        return v

    runs, seen = observe(program)
    assert seen == [("own", False), ("own", True)]
    np.testing.assert_allclose(runs.params["own"]["v"], [0.3])


def test_reentering_the_current_scope_with_reuse_true_shares_its_variables():
    """TF1's multi-tower idiom: ``variable_scope(get_variable_scope(), reuse=True)``."""

    def program(seen):
        towers = []
        for i in range(2):
            with js.variable_scope(js.get_variable_scope(), reuse=i > 0):
                seen.append(scope_state())
                towers.append(js.get_variable("w", [1]))
        with js.variable_scope("tower"):
            t = js.get_variable("w", [1])
            with js.variable_scope(js.get_variable_scope(), reuse=True):
                seen.append(scope_state())
                assert js.get_variable("w", [1]) is t
            seen.append(scope_state())
        assert towers[0] is towers[1]

    runs, seen = observe(program)
    assert seen == [("", False), ("", True), ("tower", True), ("tower", False)]
    assert paths(runs.params) == ["tower/w", "w"]


def test_scope_from_another_call_cannot_be_entered():
    kept = []

    def first():
        with js.variable_scope("a") as a:
            kept.append(a)

    def second():
        with js.variable_scope(kept[0]):
            pass

    js.transform(first).init(0)
    with pytest.raises(js.errors.StaleScopeError) as info:
        js.transform(second).init(0)
    assert isinstance(info.value, RuntimeError)
    assert "'a'" in str(info.value) and "capture the scope inside" in str(info.value)
