"""Op-name scopes (DESIGN §4): ``js.name_scope`` and the op-name scope each
``js.variable_scope`` opens.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

import jaxscope as js
from jaxscope._src import scopes as scopes_lib

from .conftest import observe, paths, raises_in_init_and_apply, run_both


def op_stacks(fn, params, *args, primitive="add"):
    """The op-name scope (``name_stack``) of each ``primitive`` equation in
    the jaxpr of ``apply``, in program order."""
    jaxpr = jax.make_jaxpr(js.transform(fn).apply)(params, *args)
    return [
        str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns if e.primitive.name == primitive
    ]


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
def test_a_call_opens_a_jax_named_scope_per_scope_only_while_traced(monkeypatch, jit):
    """Eager ops carry no name a trace could show, so an eager call enters no
    ``jax.named_scope``; the op-name scopes it reports are the same."""
    seen = []
    f = _scoped_model(seen)
    params = f.init(0, jnp.ones(2))
    apply = jax.jit(f.apply) if jit else f.apply
    opened = _named_scopes_opened(monkeypatch, lambda: apply(params, jnp.ones(2)))
    assert opened == (["a", "ops"] if jit else [])
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
    assert opened == ["cell"]  # the body is traced; "rnn" is entered eagerly


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
