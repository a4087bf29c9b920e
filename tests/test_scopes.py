"""Variable scopes (DESIGN §2) and op-name scopes (DESIGN §4).

Every program runs through ``init``, eager ``apply`` and jitted ``apply`` (the
``run_both`` helper), which must agree; observations made while the program
runs (scope names, reuse flags, getter calls) are recorded in each of the
three runs and must be the same in all of them.
"""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jaxscope as js
from jaxscope._src import scopes as scopes_lib

from .conftest import run_both

const = js.initializers.constant


def paths(params):
    return sorted(js.flatten(params))


def observe(program, *args):
    """Runs ``program(seen, *args)`` through init, apply and jitted apply;
    checks that the three runs recorded the same observations in ``seen``
    and returns ``(runs, observations of one run)``."""
    seen = []
    runs = run_both(lambda *a: program(seen, *a), *args)
    n = len(seen) // 3
    assert len(seen) == 3 * n and seen == seen[:n] * 3, seen
    return runs, seen[:n]


def scope_state(scope=None):
    """``(name, reuse)`` of a scope (the current one by default)."""
    scope = js.get_variable_scope() if scope is None else scope
    return scope.name, scope.reuse


def raises_in_init_and_apply(fn, exc, *words):
    """``fn`` raises ``exc`` in init and in apply (on an empty tree), with a
    message that holds every one of ``words``."""
    f = js.transform(fn)
    for run in (lambda: f.init(0), lambda: f.apply({})):
        with pytest.raises(exc) as info:
            run()
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def op_stacks(fn, params, *args, primitive="add"):
    """The op-name scope (``name_stack``) of each ``primitive`` equation in
    the jaxpr of ``apply``, in program order."""
    jaxpr = jax.make_jaxpr(js.transform(fn).apply)(params, *args)
    return [
        str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns if e.primitive.name == primitive
    ]


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


# --- default_name numbering ---------------------------------------------------------


def test_default_name_numbers_siblings_layer_layer_1_layer_2():
    def program(seen):
        for _ in range(3):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)
                js.get_variable("w", [1])

    runs, seen = observe(program)
    assert seen == ["layer", "layer_1", "layer_2"]
    assert paths(runs.params) == ["layer/w", "layer_1/w", "layer_2/w"]


def test_default_name_counts_scopes_opened_by_name():
    def program(seen):
        with js.variable_scope("layer"):
            pass
        with js.variable_scope(None, default_name="layer") as s:
            seen.append(s.name)

    _, seen = observe(program)
    assert seen == ["layer_1"]


def test_default_name_takes_the_smallest_unopened_number():
    def program(seen):
        with js.variable_scope("layer_1"):
            pass
        with js.variable_scope("layer_3"):
            pass
        for _ in range(4):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)

    _, seen = observe(program)
    # layer_1 and layer_3 were opened by name: their counts say they are taken.
    assert seen == ["layer", "layer_2", "layer_4", "layer_5"]


def test_default_names_are_numbered_per_parent_scope():
    def program(seen):
        for parent in ("a", "b", "a"):
            with js.variable_scope(parent):
                with js.variable_scope(None, default_name="layer") as s:
                    seen.append(s.name)

    _, seen = observe(program)
    # Re-opening "a" by name starts its numbering again (see the reset below).
    assert seen == ["a/layer", "b/layer", "a/layer"]


def test_exiting_a_named_scope_resets_the_counts_below_it():
    def program(seen):
        with js.variable_scope("outer"):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)
        with js.variable_scope("outer"):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)
        with js.variable_scope(None, default_name="outer") as s:
            seen.append(s.name)  # "outer" itself is still counted

    _, seen = observe(program)
    assert seen == ["outer/layer", "outer/layer_1", "outer/layer", "outer_1"]


def test_exiting_a_default_named_scope_resets_the_counts_below_it():
    def program(seen):
        with js.variable_scope("layer/sub"):  # counts "layer/sub", not "layer"
            pass
        with js.variable_scope(None, default_name="layer") as s:
            seen.append(s.name)
        with js.variable_scope("layer"):
            with js.variable_scope(None, default_name="sub") as s:
                seen.append(s.name)

    _, seen = observe(program)
    # Exiting the default-named "layer" reset "layer/sub" (as in TF1).
    assert seen == ["layer", "layer/sub"]


def test_exiting_a_reentered_captured_scope_restores_the_count_table():
    def program(seen):
        with js.variable_scope("a") as a:
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)
            with js.variable_scope(a):
                with js.variable_scope(None, default_name="layer") as s:
                    seen.append(s.name)
            # Restored, not reset: "a/layer" still counts, "a/layer_1" no longer.
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(s.name)

    _, seen = observe(program)
    assert seen == ["a/layer", "a/layer_1", "a/layer_1"]


def test_reentering_a_captured_scope_counts_its_name_in_the_restored_table():
    def program(seen):
        with js.variable_scope("outer"):
            with js.variable_scope("a") as a:
                pass
        # Exiting "outer" reset the count of "outer/a"; entering a counts it
        # again, and the table restored on exit includes that count.
        with js.variable_scope(a):
            pass
        with js.variable_scope("outer"):
            with js.variable_scope(None, default_name="a") as s:
                seen.append(s.name)

    _, seen = observe(program)
    assert seen == ["outer/a_1"]


def test_reentered_captured_scope_numbers_default_names_afresh_each_time():
    def program(seen):
        with js.variable_scope("a") as a:
            pass
        for _ in range(2):
            with js.variable_scope(a):
                with js.variable_scope(None, default_name="layer") as s:
                    seen.append(s.name)
                with js.variable_scope(None, default_name="layer") as s:
                    seen.append(s.name)

    _, seen = observe(program)
    assert seen == ["a/layer", "a/layer_1"] * 2


def test_default_name_counts_are_per_call():
    def program(seen):
        with js.variable_scope(None, default_name="layer") as s:
            seen.append(s.name)
            js.get_variable("w", [1])

    f = js.transform(lambda: program([]))
    assert paths(f.init(0)) == paths(f.init(1)) == ["layer/w"]
    _, seen = observe(program)  # init, apply and jitted apply: each starts at 0
    assert seen == ["layer"]


@pytest.mark.parametrize("reuse", [True, js.AUTO_REUSE], ids=["true", "auto_reuse"])
def test_reuse_with_default_name_is_an_error(reuse):
    def program():
        with js.variable_scope(None, default_name="layer", reuse=reuse):
            pass

    raises_in_init_and_apply(
        program, js.errors.ScopeArgumentError, "default_name='layer'", "reuse by name"
    )
    with pytest.raises(ValueError) as info:  # TF1's type for this misuse, and only it
        js.transform(program).init(0)
    assert not isinstance(info.value, TypeError)


def test_scopes_nested_hundreds_deep_are_named_and_numbered():
    depth = 500

    def program(seen):
        with contextlib.ExitStack() as scopes:
            for _ in range(depth):
                scopes.enter_context(
                    js.variable_scope(None, default_name="s", auxiliary_name_scope=False)
                )
            js.get_variable("w", [], initializer=js.initializers.zeros)
            with js.variable_scope(None, default_name="s") as deepest:
                seen.append(deepest.name.count("/"))
        with js.variable_scope(None, default_name="s") as top:  # s was opened once
            seen.append(top.name)

    runs, seen = observe(program)
    assert seen == [depth, "s_1"]
    assert paths(runs.params) == ["/".join(["s"] * depth) + "/w"]


def test_default_name_scope_inherits_the_parents_reuse():
    def program(seen):
        with js.variable_scope("r", reuse=True):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(scope_state(s))
        with js.variable_scope("a", reuse=js.AUTO_REUSE):
            with js.variable_scope(None, default_name="layer") as s:
                seen.append(scope_state(s))

    _, seen = observe(program)
    assert seen == [("r/layer", True), ("a/layer", js.AUTO_REUSE)]


def test_variable_scope_needs_a_name_or_a_default_name():
    def program():
        with js.variable_scope(None):
            pass

    raises_in_init_and_apply(program, js.errors.ArgumentTypeError, "default_name")
    with pytest.raises(TypeError) as info:  # TF1's type for this misuse, and only it
        js.transform(program).init(0)
    assert not isinstance(info.value, ValueError)


@pytest.mark.parametrize("flag", ["invalid", 1, None], ids=["str", "int", "none"])
def test_a_non_bool_auxiliary_name_scope_is_a_type_error(flag):
    def program():
        with js.variable_scope("enc", auxiliary_name_scope=flag):
            pass

    raises_in_init_and_apply(program, js.errors.ArgumentTypeError, "auxiliary_name_scope", "bool")
    with pytest.raises(TypeError) as info:  # as TF1
        js.variable_scope("enc", auxiliary_name_scope=flag)
    assert not isinstance(info.value, ValueError)


def test_a_non_callable_custom_getter_is_a_value_error_at_the_scope():
    def program():
        with js.variable_scope("enc", custom_getter=3):
            raise AssertionError("the scope must not open")

    raises_in_init_and_apply(program, js.errors.ScopeArgumentError, "enc", "custom_getter", "3")
    with pytest.raises(ValueError) as info:
        js.variable_scope("enc", custom_getter=3)
    assert not isinstance(info.value, TypeError)


def test_set_custom_getter_refuses_a_non_callable():
    def program():
        with js.variable_scope("enc") as scope:
            scope.set_custom_getter("getter")

    raises_in_init_and_apply(program, js.errors.ScopeArgumentError, "enc", "callable")


# --- Inherited settings ------------------------------------------------------------


def test_initializer_is_inherited_and_overridden():
    def program():
        with js.variable_scope("a", initializer=const(0.4)):
            js.get_variable("v", [1])
            js.get_variable("explicit", [1], initializer=const(0.3))
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", initializer=const(0.2)):
                js.get_variable("v", [1])
                with js.variable_scope("inherits"):
                    js.get_variable("v", [1])
            with js.variable_scope("set") as s:
                s.set_initializer(const(0.1))
                js.get_variable("v", [1])

    params = run_both(program).params
    values = {k: float(v[0]) for k, v in js.flatten(params).items()}
    assert values == pytest.approx(
        {
            "a/v": 0.4,
            "a/explicit": 0.3,
            "a/inherits/v": 0.4,
            "a/overrides/v": 0.2,
            "a/overrides/inherits/v": 0.2,
            "a/set/v": 0.1,
        }
    )


def test_regularizer_is_inherited_and_overridden():
    def times(k):
        return lambda v: k * jnp.sum(v)

    def program(seen):
        init = js.initializers.ones
        with js.variable_scope("a", regularizer=times(1.0)):
            js.get_variable("v", [2], initializer=init)
            with js.variable_scope("inherits") as s:
                seen.append(s.regularizer is not None)
                js.get_variable("v", [2], initializer=init)
            with js.variable_scope("overrides", regularizer=times(10.0)):
                js.get_variable("v", [2], initializer=init)
            js.get_variable("explicit", [2], initializer=init, regularizer=times(100.0))
        js.get_variable("none", [2], initializer=init)
        return js.get_regularization_losses()

    runs, seen = observe(program)
    assert seen == [True]
    np.testing.assert_allclose(runs.out_jit, [2.0, 2.0, 20.0, 200.0])


def test_constraint_is_inherited_and_overridden():
    def clip(v):
        return jnp.clip(v, -1.0, 1.0)

    def nonneg(v):
        return jnp.maximum(v, 0.0)

    def explicit(v):
        return v

    def program():
        with js.variable_scope("a", constraint=clip):
            js.get_variable("v", [1])
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", constraint=nonneg):
                js.get_variable("v", [1])
            js.get_variable("explicit", [1], constraint=explicit)
        js.get_variable("none", [1])

    run_both(program)
    constraints = js.flatten(js.get_constraints(js.transform(program), 0))
    assert constraints == {
        "a/v": clip,
        "a/inherits/v": clip,
        "a/overrides/v": nonneg,
        "a/explicit": explicit,
    }


def test_dtype_is_inherited_and_overridden():
    def program(seen):
        with js.variable_scope("a", dtype=jnp.bfloat16) as a:
            seen.append(jnp.dtype(a.dtype))
            js.get_variable("v", [1])
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", dtype=jnp.float16):
                js.get_variable("v", [1])
            js.get_variable("explicit", [1], dtype=jnp.float32)
            js.get_variable("count", [1], dtype=jnp.int32)

    runs, seen = observe(program)
    assert seen == [jnp.dtype(jnp.bfloat16)]
    assert {k: v.dtype for k, v in js.flatten(runs.params).items()} == {
        "a/v": jnp.bfloat16,
        "a/inherits/v": jnp.bfloat16,
        "a/overrides/v": jnp.float16,
        "a/explicit": jnp.float32,
        "a/count": jnp.int32,
    }


def test_partitioner_is_inherited_overridden_and_called_with_name_shape_dtype():
    def program(seen):
        def outer(name, shape, dtype):
            seen.append(("outer", name, shape, jnp.dtype(dtype)))
            return P("data")

        def inner(name, shape, dtype):
            seen.append(("inner", name, shape, jnp.dtype(dtype)))
            return None

        with js.variable_scope("a", partitioner=outer) as a:
            assert a.partitioner is outer
            js.get_variable("v", [4, 2])
            with js.variable_scope("inherits", dtype=jnp.bfloat16):
                js.get_variable("v", [3])
            with js.variable_scope("overrides", partitioner=inner):
                js.get_variable("v", [1])
            js.get_variable("given", [2], sharding=P(None))  # explicit: not asked

    _, seen = observe(program)
    f32, bf16 = jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)
    assert seen == [
        ("outer", "a/v", (4, 2), f32),
        ("outer", "a/inherits/v", (3,), bf16),
        ("inner", "a/overrides/v", (1,), f32),
    ]


def test_custom_getter_is_inherited_by_subscopes():
    def program(seen):
        def getter(getter, name, **kwargs):
            seen.append(name)
            return getter(name, **kwargs)

        with js.variable_scope("a", custom_getter=getter):
            with js.variable_scope("b"):
                js.get_variable("v", [1])
                js.get_variable("v2", [1])
        js.get_variable("outside", [1])

    _, seen = observe(program)
    assert seen == ["a/b/v", "a/b/v2"]


def test_nested_custom_getters_compose_inner_first():
    """TF1's order: the inner scope's getter receives a getter that calls the
    outer's, so inner runs first and sees what outer returns."""

    def program(seen):
        def tagged(tag, fn):
            def getter(getter, name, **kwargs):
                seen.append(tag)
                return fn(getter(name, **kwargs))

            return getter

        with js.variable_scope("o", custom_getter=tagged("outer", lambda v: v * 2.0)):
            with js.variable_scope("m", custom_getter=tagged("middle", lambda v: v + 1.0)):
                with js.variable_scope("i", custom_getter=tagged("inner", lambda v: v * 10.0)):
                    return js.get_variable("v", [1], initializer=js.initializers.ones)

    runs, seen = observe(program)
    assert seen == ["inner", "middle", "outer"]
    np.testing.assert_allclose(runs.out_jit, [(1.0 * 2.0 + 1.0) * 10.0])
    np.testing.assert_allclose(runs.params["o"]["m"]["i"]["v"], [1.0])


def test_captured_scope_getter_composes_with_its_own_getter_not_the_current_nestings():
    def program(seen):
        def tagged(tag):
            def getter(getter, name, **kwargs):
                seen.append((tag, name))
                return getter(name, **kwargs)

            return getter

        with js.variable_scope("own", custom_getter=tagged("own")) as own:
            pass
        with js.variable_scope("elsewhere", custom_getter=tagged("elsewhere")):
            with js.variable_scope(own):
                js.get_variable("v", [1])
            with js.variable_scope(own, custom_getter=tagged("override")):
                js.get_variable("w", [1])

    _, seen = observe(program)
    assert seen == [("own", "own/v"), ("override", "own/w"), ("own", "own/w")]


# --- VariableScope objects ----------------------------------------------------------


def test_scope_properties_reflect_the_arguments():
    init, reg, con, part = const(0.5), (lambda v: None), (lambda v: v), (lambda n, s, d: None)

    def getter(getter, name, **kwargs):
        return getter(name, **kwargs)

    def program(seen):
        with js.variable_scope(
            "a",
            reuse=js.AUTO_REUSE,
            initializer=init,
            regularizer=reg,
            constraint=con,
            custom_getter=getter,
            dtype=jnp.bfloat16,
            partitioner=part,
        ) as s:
            seen.append(
                (
                    s.name,
                    s.original_name_scope,
                    s.reuse,
                    s.initializer is init,
                    s.regularizer is reg,
                    s.constraint is con,
                    s.custom_getter is getter,
                    jnp.dtype(s.dtype),
                    s.partitioner is part,
                )
            )
            seen.append(js.get_variable_scope() is s)

    _, seen = observe(program)
    assert seen == [
        ("a", "a/", js.AUTO_REUSE, True, True, True, True, jnp.dtype(jnp.bfloat16), True),
        True,
    ]


def test_set_methods_update_the_properties_and_later_variables():
    init, reg, con, part = (
        const(0.5),
        (lambda v: 3.0 * jnp.sum(v)),
        (lambda v: v),
        (lambda n, s, d: None),
    )

    def getter(getter, name, **kwargs):
        return getter(name, **kwargs) + 1.0

    def program(seen):
        with js.variable_scope("a") as s:
            s.set_initializer(init)
            s.set_regularizer(reg)
            s.set_constraint(con)
            s.set_custom_getter(getter)
            s.set_dtype(jnp.bfloat16)
            s.set_partitioner(part)
            seen.append(
                (
                    s.initializer is init,
                    s.regularizer is reg,
                    s.constraint is con,
                    s.custom_getter is getter,
                    jnp.dtype(s.dtype),
                    s.partitioner is part,
                )
            )
            v = js.get_variable("v", [2])
        return v, js.get_regularization_loss()

    runs, seen = observe(program)
    assert seen == [(True, True, True, True, jnp.dtype(jnp.bfloat16), True)]
    v = runs.params["a"]["v"]
    assert v.dtype == jnp.bfloat16
    np.testing.assert_allclose(v.astype(jnp.float32), [0.5, 0.5])
    np.testing.assert_allclose(runs.out_jit[0].astype(jnp.float32), [1.5, 1.5])  # getter
    np.testing.assert_allclose(runs.out_jit[1], 3.0)
    assert js.flatten(js.get_constraints(js.transform(functools.partial(program, [])), 0)) == {
        "a/v": con
    }


def test_scope_get_variable_uses_the_scopes_name_and_settings_outside_the_scope():
    def program(seen):
        with js.variable_scope("enc", initializer=const(0.3), dtype=jnp.bfloat16) as enc:
            pass
        with js.variable_scope("other", initializer=const(0.9), dtype=jnp.float16):
            with js.name_scope("ops"):
                v = enc.get_variable("w", [2])
                seen.append(js.get_variable_scope().name)  # no scope was opened
        return v

    runs, seen = observe(program)
    assert seen == ["other"]
    assert paths(runs.params) == ["enc/w"]
    w = runs.params["enc"]["w"]
    assert w.dtype == jnp.bfloat16
    np.testing.assert_allclose(w.astype(jnp.float32), [0.3, 0.3], rtol=1e-2)


def test_scope_get_variable_uses_the_scopes_reuse_flag():
    def program():
        with js.variable_scope("enc"):
            w = js.get_variable("w", [1])
        with js.variable_scope("enc", reuse=True) as enc_reusing:
            pass
        with js.variable_scope("other"):
            assert enc_reusing.get_variable("w", [1]) is w
        return w

    run_both(program)


def test_scope_get_variable_on_a_non_reusing_scope_creates():
    def program():
        with js.variable_scope("enc") as enc:
            w = js.get_variable("w", [1])
        with js.variable_scope("dec", reuse=True):
            enc.get_variable("w", [1])  # enc's reuse is False: a second creation
        return w

    with pytest.raises(js.errors.VariableExistsError) as info:
        js.transform(program).init(0)
    assert isinstance(info.value, ValueError)
    assert "enc/w" in str(info.value) and "reuse=True" in str(info.value)


def test_scope_get_variable_goes_through_the_scopes_custom_getter():
    def program(seen):
        def getter(getter, name, **kwargs):
            seen.append(name)
            return getter(name, **kwargs)

        with js.variable_scope("enc", custom_getter=getter) as enc:
            pass
        enc.get_variable("w", [1])

    _, seen = observe(program)
    assert seen == ["enc/w"]


# --- Nesting errors -----------------------------------------------------------------


def test_exiting_variable_scopes_out_of_order_is_a_runtime_error():
    def program():
        outer = js.variable_scope("outer")
        outer.__enter__()
        inner = js.variable_scope("inner")
        inner.__enter__()
        outer.__exit__(None, None, None)

    raises_in_init_and_apply(
        program, js.errors.ScopeNestingError, "'outer'", "out of order", "`with`"
    )
    with pytest.raises(RuntimeError):
        js.transform(program).init(0)


def test_exiting_a_name_scope_out_of_order_is_a_runtime_error():
    def program():
        ops = js.name_scope("ops")
        ops.__enter__()
        with js.variable_scope("inner"):
            ops.__exit__(None, None, None)

    raises_in_init_and_apply(program, js.errors.ScopeNestingError, "'ops'", "out of order")


def test_a_refused_out_of_order_exit_changes_nothing():
    def program(seen):
        outer, inner = js.variable_scope("a"), js.variable_scope("b")
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(js.errors.ScopeNestingError):
            outer.__exit__(None, None, None)
        seen.append(js.get_variable_scope().name)
        v = js.get_variable("v", [1])  # still inside a/b
        with js.name_scope("ops") as op_scope:
            seen.append(op_scope)
            out = v + 1.0
        inner.__exit__(None, None, None)  # the in-order exits still work
        outer.__exit__(None, None, None)
        seen.append(js.get_variable_scope().name)
        js.get_variable("w", [1])
        return out

    runs, seen = observe(program)
    assert seen == ["a/b", "a/b/ops/", ""]
    assert paths(runs.params) == ["a/b/v", "w"]
    assert op_stacks(lambda: program([]), runs.params) == ["a/b/ops"]


def test_a_refused_exit_of_a_scope_that_is_not_open_changes_nothing():
    def program(seen):
        never = js.variable_scope("never")
        with js.variable_scope("a"):
            with pytest.raises(js.errors.ScopeNestingError, match="not open"):
                never.__exit__(None, None, None)
            seen.append(js.get_variable_scope().name)
        seen.append(js.get_variable_scope().name)

    _, seen = observe(program)
    assert seen == ["a", ""]


def test_a_variable_scope_object_entered_inside_itself_is_a_fresh_entry():
    def program(seen):
        scope = js.variable_scope("a")
        with scope as outer:
            with scope as inner:
                seen.append((outer.name, inner.name))
                x = js.get_variable("in", [1]) + 1.0
            seen.append(js.get_variable_scope().name)
        seen.append(js.get_variable_scope().name)
        js.get_variable("w", [1])
        return x

    runs, seen = observe(program)
    assert seen == [("a", "a/a"), "a", ""]
    assert paths(runs.params) == ["a/a/in", "w"]
    assert op_stacks(lambda: program([]), runs.params) == ["a/a"]


def test_recursion_reusing_one_scope_object_nests_and_unwinds_cleanly():
    block = js.variable_scope("block")

    def tower(x, depth):
        if depth == 0:
            return x
        with block:
            return tower(x * js.get_variable("w", []), depth - 1)

    def program(x):
        y = tower(x, 3)
        return y + js.get_variable("top", [])  # back at the root

    runs = run_both(program, 1.0)
    assert paths(runs.params) == ["block/block/block/w", "block/block/w", "block/w", "top"]
    eqns = jax.make_jaxpr(js.transform(program).apply)(runs.params, 1.0).jaxpr.eqns
    assert [str(e.source_info.name_stack) for e in eqns if e.primitive.name == "add"] == [""]


def test_a_name_scope_object_entered_inside_itself_is_a_fresh_entry():
    def program(seen):
        ops = js.name_scope("ops")
        with ops as outer:
            with ops as inner:
                seen.append((outer, inner))
                x = js.get_variable("v", [1]) + 1.0
        return x + 2.0

    runs, seen = observe(program)
    assert seen == [("ops/", "ops/ops/")]
    assert op_stacks(lambda: program([]), runs.params) == ["ops/ops", ""]


def test_a_scope_left_open_at_the_end_of_the_call_is_an_error():
    def program():
        js.variable_scope("forgotten").__enter__()

    raises_in_init_and_apply(
        program, js.errors.ScopeNestingError, "forgotten", "never exited", "`with`"
    )


def test_an_out_of_order_exit_during_an_exception_keeps_the_exception():
    def program():
        outer = js.variable_scope("outer")
        outer.__enter__()
        js.variable_scope("inner").__enter__()
        error = KeyError("original")
        outer.__exit__(KeyError, error, None)  # must not replace the error
        raise error

    with pytest.raises(KeyError, match="original"):
        js.transform(program).init(0)


# --- Op-name scopes (§4) --------------------------------------------------------------


def test_variable_scopes_name_the_ops_inside_them():
    def program():
        with js.variable_scope("a"):
            with js.variable_scope("b"):
                return js.get_variable("v", [1]) + 1.0

    params = run_both(program).params
    assert op_stacks(program, params) == ["a/b"]


def test_name_scope_names_ops_inside_a_variable_scope():
    def program():
        with js.variable_scope("a"):
            v = js.get_variable("v", [1])
            with js.name_scope("ops"):
                return v + 1.0

    params = run_both(program).params
    assert op_stacks(program, params) == ["a/ops"]


def test_op_name_scopes_are_not_uniquified():
    def program():
        outs = []
        for _ in range(2):
            with js.variable_scope("boo", reuse=js.AUTO_REUSE):
                v = js.get_variable("v", [1])
                outs.append(v + 1.0)
                with js.name_scope("bar"):
                    outs.append(v + 2.0)
        return outs

    params = run_both(program).params
    assert op_stacks(program, params) == ["boo", "boo/bar"] * 2


def test_op_name_scopes_show_in_hlo_metadata():
    def program():
        with js.variable_scope("enc"):
            with js.name_scope("ops"):
                return js.get_variable("v", [2]) + 1.0

    params = run_both(program).params
    hlo = jax.jit(js.transform(program).apply).lower(params).as_text(debug_info=True)
    assert "/enc/ops/add" in hlo


def test_name_scope_does_not_change_variable_names():
    def program(seen):
        with js.variable_scope("a"):
            with js.name_scope("ops"):
                seen.append(js.get_variable_scope().name)
                js.get_variable("v", [1])
                with js.variable_scope("b"):
                    js.get_variable("w", [1])
        with js.name_scope("top"):
            js.get_variable("u", [1])

    runs, seen = observe(program)
    assert seen == ["a"]
    assert paths(runs.params) == ["a/b/w", "a/v", "u"]


def test_name_scope_yields_its_full_op_scope_name():
    def program(seen):
        with js.variable_scope("a"):
            with js.name_scope("ops") as name:
                seen.append(name)

    _, seen = observe(program)
    assert seen == ["a/ops/"]


def test_default_named_scope_names_ops_by_its_uniquified_name():
    def program():
        outs = []
        for _ in range(2):
            with js.variable_scope(None, default_name="layer"):
                outs.append(js.get_variable("v", [1]) + 1.0)
        return outs

    params = run_both(program).params
    assert op_stacks(program, params) == ["layer", "layer_1"]


def test_auxiliary_name_scope_false_opens_no_op_scope():
    def program(seen):
        with js.variable_scope("outer"):
            with js.variable_scope("inner", auxiliary_name_scope=False) as inner:
                seen.append(inner.original_name_scope)
                v = js.get_variable("v", [1])
                return v + 1.0

    runs, seen = observe(program)
    assert paths(runs.params) == ["outer/inner/v"]
    assert seen == ["outer/"]
    assert op_stacks(functools.partial(program, []), runs.params) == ["outer"]


def test_auxiliary_name_scope_false_on_a_captured_scope_opens_no_op_scope():
    def program():
        with js.variable_scope("own") as own:
            pass
        with js.variable_scope("elsewhere"):
            with js.variable_scope(own, auxiliary_name_scope=False):
                return js.get_variable("v", [1]) + 1.0

    params = run_both(program).params
    assert op_stacks(program, params) == ["elsewhere"]


def test_original_name_scope_is_the_op_scope_of_the_first_entry():
    def program(seen):
        with js.variable_scope("a") as a:
            seen.append(a.original_name_scope)
            with js.name_scope("ops"):
                with js.variable_scope("b") as b:
                    seen.append(b.original_name_scope)
        with js.variable_scope("x"):
            with js.variable_scope(a) as again:
                seen.append(again.original_name_scope)  # kept by re-entry
        with js.variable_scope("a") as reopened:
            seen.append(reopened.original_name_scope)  # not uniquified

    _, seen = observe(program)
    assert seen == ["a/", "a/ops/b/", "a/", "a/"]


def _named_scopes_opened(monkeypatch, call):
    """The names passed to ``jax.named_scope`` by jaxscope during ``call()``."""
    opened = []
    real = jax.named_scope

    def recording(name):
        opened.append(name)
        return real(name)

    monkeypatch.setattr(scopes_lib.jax, "named_scope", recording)
    call()
    return opened


def _scoped_model(seen):
    def model(x):
        with js.variable_scope("a") as a:
            with js.name_scope("ops"):
                seen.append(a.original_name_scope)
                x = x + js.get_variable("v", [2])
        return x

    return js.transform(model)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_call_opens_a_jax_named_scope_per_scope_eager_or_traced(monkeypatch, jit):
    seen = []
    f = _scoped_model(seen)
    params = f.init(0, jnp.ones(2))
    apply = jax.jit(f.apply) if jit else f.apply
    assert _named_scopes_opened(monkeypatch, lambda: apply(params, jnp.ones(2))) == ["a", "ops"]
    assert seen == ["a/", "a/"]


def test_scopes_inside_a_lifted_body_of_an_eager_call_open_named_scopes(monkeypatch):
    def model(xs):
        with js.variable_scope("rnn"):

            def step(c, x):
                with js.variable_scope("cell"):
                    return c + x * js.get_variable("w", []), None

            return js.scan(step, jnp.zeros(()), xs)[0]

    f = js.transform(model)
    params = f.init(0, jnp.ones(3))
    opened = _named_scopes_opened(monkeypatch, lambda: f.apply(params, jnp.ones(3)))
    assert opened == ["rnn", "cell"]


def test_name_scope_outside_a_transform_names_ops():
    def fn(x):
        with js.name_scope("outside"):
            return x + 1.0

    eqns = jax.make_jaxpr(fn)(1.0).jaxpr.eqns
    assert [str(e.source_info.name_stack) for e in eqns] == ["outside"]


def test_name_scope_of_an_original_name_scope_reenters_it_absolutely():
    def program(seen):
        with js.variable_scope("a") as a:
            pass
        with js.variable_scope("b"):
            with js.name_scope(a.original_name_scope) as op_scope:
                seen.append(op_scope)
                x = js.get_variable("v", [1]) + 1.0  # variable names are unchanged
                with js.name_scope("inner"):
                    y = x + 2.0
            return x, y + 3.0

    runs, seen = observe(program)
    assert seen == ["a/"]
    assert paths(runs.params) == ["b/v"]
    assert op_stacks(lambda: program([]), runs.params) == ["a", "a/inner", "b"]


def test_name_scope_ending_in_a_slash_outside_a_transform_is_absolute():
    def fn(x):
        with js.name_scope("outer"):
            with js.name_scope("a/b/") as name:
                return name, x + 1.0

    name, _ = fn(1.0)
    eqns = jax.make_jaxpr(lambda x: fn(x)[1])(1.0).jaxpr.eqns
    assert name == "a/b/"
    assert [str(e.source_info.name_stack) for e in eqns] == ["a/b"]


def test_name_scope_names_are_validated():
    def program():
        with js.name_scope("bad//name"):
            pass

    raises_in_init_and_apply(program, js.errors.InvalidNameError, "'bad//name'")
