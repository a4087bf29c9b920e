"""``default_name`` numbering (DESIGN §2): exactly TF1's names."""

import contextlib

import pytest

import jaxscope as js

from .conftest import observe, paths, raises_in_init_and_apply, scope_state

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
