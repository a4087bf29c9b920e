"""Variable scopes (DESIGN §2): nesting, the reuse flag and the root scope.

Every program runs through ``init``, eager ``apply`` and jitted ``apply`` (the
``run_both`` helper), which must agree; observations made while the program
runs (scope names, reuse flags) are recorded in each of the three runs and
must be the same in all of them.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import observe, paths, run_both, scope_state

const = js.initializers.constant


# --- Nesting ------------------------------------------------------------------


def test_nested_scopes_join_names_like_directories():
    def program(seen):
        with js.variable_scope("foo"):
            with js.variable_scope("bar") as bar:
                seen.append(bar.name)
                js.get_variable("v", [1])
            with js.variable_scope("a/b"):
                with js.variable_scope("c"):
                    seen.append(js.get_variable_scope().name)
                    js.get_variable("w", [1])
        seen.append(js.get_variable_scope().name)

    runs, seen = observe(program)
    assert seen == ["foo/bar", "foo/a/b/c", ""]
    assert paths(runs.params) == ["foo/a/b/c/w", "foo/bar/v"]


def test_reopening_a_scope_by_name_adds_to_the_same_subtree():
    def program():
        with js.variable_scope("foo"):
            js.get_variable("v", [1])
        with js.variable_scope("bar"):
            pass
        with js.variable_scope("foo"):
            js.get_variable("w", [1])

    assert paths(run_both(program).params) == ["foo/v", "foo/w"]


# --- Reuse ----------------------------------------------------------------------


def test_reuse_none_inherits_the_parents_flag():
    def program(seen):
        with js.variable_scope("plain"):
            with js.variable_scope("child", reuse=None):
                seen.append(scope_state())
        with js.variable_scope("plain", reuse=True):
            with js.variable_scope("child", reuse=None):
                seen.append(scope_state())
                with js.variable_scope("grandchild"):
                    seen.append(scope_state())

    _, seen = observe(program)
    assert seen == [
        ("plain/child", False),
        ("plain/child", True),
        ("plain/child/grandchild", True),
    ]


def test_reuse_true_shares_variables_in_the_scope_and_its_subscopes():
    def program():
        with js.variable_scope("a"):
            v = js.get_variable("v", [2])
            with js.variable_scope("b"):
                w = js.get_variable("w", [2])
        with js.variable_scope("a", reuse=True):
            v1 = js.get_variable("v", [2])
            with js.variable_scope("b"):
                w1 = js.get_variable("w", [2])
        assert v1 is v and w1 is w
        return v1, w1

    assert paths(run_both(program).params) == ["a/b/w", "a/v"]


def test_reuse_true_in_init_needs_the_variable_to_exist():
    def program():
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [1])

    with pytest.raises(js.errors.VariableMissingError) as info:
        js.transform(program).init(0)
    assert isinstance(info.value, ValueError)
    assert "a/v" in str(info.value) and "AUTO_REUSE" in str(info.value)


def test_reuse_false_cannot_turn_reuse_off_inside_a_reusing_scope():
    def program(seen):
        with js.variable_scope("a"):
            v = js.get_variable("v", [1])
        with js.variable_scope("a", reuse=True):
            with js.variable_scope("b", reuse=False):
                seen.append(scope_state())
            with js.variable_scope(None, default_name="b", reuse=False):
                seen.append(scope_state())
            with js.variable_scope(js.get_variable_scope(), reuse=False) as again:
                seen.append(scope_state(again))
                assert js.get_variable("v", [1]) is v

    _, seen = observe(program)
    assert seen == [("a/b", True), ("a/b_1", True), ("a", True)]


def test_reuse_false_inside_a_reusing_scope_does_not_allow_creation():
    def program():
        with js.variable_scope("a", reuse=True):
            with js.variable_scope("b", reuse=False):
                js.get_variable("new", [1])

    with pytest.raises(js.errors.VariableMissingError, match="a/b/new"):
        js.transform(program).init(0)


def test_auto_reuse_creates_when_missing_and_reuses_otherwise():
    def program(seen):
        values = []
        for _ in range(3):
            with js.variable_scope("shared", reuse=js.AUTO_REUSE):
                seen.append(scope_state())
                values.append(js.get_variable("v", [2]))
        assert values[0] is values[1] is values[2]
        return values[0]

    runs, seen = observe(program)
    assert seen == [("shared", js.AUTO_REUSE)] * 3
    assert paths(runs.params) == ["shared/v"]


def test_auto_reuse_is_inherited_by_subscopes():
    def program(seen):
        values = []
        for _ in range(2):
            with js.variable_scope("outer", reuse=js.AUTO_REUSE):
                with js.variable_scope("inner"):
                    seen.append(scope_state())
                    values.append(js.get_variable("v", [1]))
        assert values[0] is values[1]

    runs, seen = observe(program)
    assert seen == [("outer/inner", js.AUTO_REUSE)] * 2
    assert paths(runs.params) == ["outer/inner/v"]


def test_auto_reuse_wins_over_an_inherited_true():
    def program(seen):
        with js.variable_scope("r"):
            js.get_variable("old", [1])
        with js.variable_scope("r", reuse=True):
            js.get_variable("old", [1])
            with js.variable_scope("auto", reuse=js.AUTO_REUSE):
                seen.append(scope_state())
                new = js.get_variable("new", [1])  # created, not an error
                assert js.get_variable("new", [1]) is new

    runs, seen = observe(program)
    assert seen == [("r/auto", js.AUTO_REUSE)]
    assert paths(runs.params) == ["r/auto/new", "r/old"]


def test_explicit_true_inside_auto_reuse_requires_existing_variables():
    seen = []

    def program():
        with js.variable_scope("auto", reuse=js.AUTO_REUSE):
            js.get_variable("v", [1])
            with js.variable_scope("strict", reuse=True):
                seen.append(scope_state())
                js.get_variable("missing", [1])

    with pytest.raises(js.errors.VariableMissingError, match="auto/strict/missing"):
        js.transform(program).init(0)
    assert seen == [("auto/strict", True)]


def test_reuse_variables_turns_reuse_on_for_the_rest_of_the_scope():
    def program(seen):
        with js.variable_scope("a") as scope:
            v = js.get_variable("v", [1])
            seen.append(scope_state())
            scope.reuse_variables()
            seen.append(scope_state())
            assert js.get_variable("v", [1]) is v
            with js.variable_scope("sub"):
                seen.append(scope_state())

    _, seen = observe(program)
    assert seen == [("a", False), ("a", True), ("a/sub", True)]


def test_reuse_variables_then_creating_is_an_error():
    def program():
        with js.variable_scope("a"):
            js.get_variable_scope().reuse_variables()
            js.get_variable("v", [1])

    with pytest.raises(js.errors.VariableMissingError, match="a/v"):
        js.transform(program).init(0)


def test_reuse_variables_does_not_outlive_the_scope():
    def program(seen):
        with js.variable_scope("a"):
            js.get_variable("v", [1])
            js.get_variable_scope().reuse_variables()
        seen.append(scope_state())
        with js.variable_scope("a"):  # a fresh scope object: reuse is off again
            seen.append(scope_state())
            js.get_variable("w", [1])

    runs, seen = observe(program)
    assert seen == [("", False), ("a", False)]
    assert paths(runs.params) == ["a/v", "a/w"]


# --- The root scope -------------------------------------------------------------


def test_root_scope_properties():
    def program(seen):
        root = js.get_variable_scope()
        seen.append(
            (
                root.name,
                root.reuse,
                jnp.dtype(root.dtype),
                root.initializer,
                root.regularizer,
                root.constraint,
                root.partitioner,
                root.custom_getter,
                root.original_name_scope,
            )
        )

    _, seen = observe(program)
    assert seen == [("", False, jnp.dtype(jnp.float32), None, None, None, None, None, "")]


def test_root_scope_reuse_is_false_not_none():
    def program(seen):
        seen.append(js.get_variable_scope().reuse)

    _, seen = observe(program)
    assert seen[0] is False


def test_root_set_initializer_applies_to_the_rest_of_the_call():
    def program():
        js.get_variable_scope().set_initializer(const(0.5))
        top = js.get_variable("top", [2])
        with js.variable_scope("a"):
            with js.variable_scope("b"):
                deep = js.get_variable("deep", [2])
        return top, deep

    params = run_both(program).params
    for value in js.flatten(params).values():
        np.testing.assert_array_equal(value, [0.5, 0.5])


def test_root_set_dtype_applies_to_the_rest_of_the_call():
    def program():
        js.get_variable_scope().set_dtype(jnp.bfloat16)
        js.get_variable("top", [2])
        with js.variable_scope("a"):
            js.get_variable("v", [2])

    params = run_both(program).params
    assert {k: v.dtype for k, v in js.flatten(params).items()} == {
        "top": jnp.bfloat16,
        "a/v": jnp.bfloat16,
    }


def test_root_set_custom_getter_applies_to_the_rest_of_the_call():
    def program(seen):
        def getter(getter, name, **kwargs):
            seen.append(name)
            return getter(name, **kwargs)

        js.get_variable_scope().set_custom_getter(getter)
        js.get_variable("top", [1])
        with js.variable_scope("a"):
            js.get_variable("v", [1])

    _, seen = observe(program)
    assert seen == ["top", "a/v"]


def test_root_reuse_variables_turns_reuse_on_for_the_rest_of_the_call():
    def program(seen):
        w = js.get_variable("w", [1])
        js.get_variable_scope().reuse_variables()
        assert js.get_variable("w", [1]) is w
        with js.variable_scope("a"):
            seen.append(scope_state())

    _, seen = observe(program)
    assert seen == [("a", True)]


def test_root_settings_do_not_leak_into_the_next_call():
    def setter():
        js.get_variable_scope().set_initializer(const(0.5))
        js.get_variable_scope().set_dtype(jnp.bfloat16)
        js.get_variable("v", [4])

    def plain(seen):
        seen.append(jnp.dtype(js.get_variable_scope().dtype))
        seen.append(js.get_variable_scope().initializer)
        return js.get_variable("v", [4])

    run_both(setter)
    runs, seen = observe(plain)
    assert seen == [jnp.dtype(jnp.float32), None]
    assert runs.params["v"].dtype == jnp.float32
    assert not np.allclose(runs.params["v"], 0.5)
