"""Scopes exited out of order, left open or entered twice (DESIGN §2): a clear
``RuntimeError`` that changes nothing.
"""

import jax
import pytest

import jaxscope as js

from .conftest import observe, paths, raises_in_init_and_apply, run_both


def op_stacks(fn, params, *args, primitive="add"):
    """The op-name scope (``name_stack``) of each ``primitive`` equation in
    the jaxpr of ``apply``, in program order."""
    jaxpr = jax.make_jaxpr(js.transform(fn).apply)(params, *args)
    return [
        str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns if e.primitive.name == primitive
    ]


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
