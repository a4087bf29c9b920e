"""``js.get_variable``'s names (DESIGN.md §3): a full name is the scope's name and
the variable's; a name is a leaf or a scope, never both; invalid names fail.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import MODES, paths, raises, run_both, run_in

ONE = jnp.ones((1,), jnp.float32)


# --- Full names ------------------------------------------------------------


def test_full_name_is_scope_name_slash_name():
    def fn():
        with js.variable_scope("encoder"):
            with js.variable_scope("lstm"):
                return js.get_variable("w", [2])

    params = run_both(fn).params
    assert paths(params) == ["encoder/lstm/w"]
    assert params["encoder"]["lstm"]["w"].shape == (2,)


def test_variable_at_root_has_its_bare_name():
    params = run_both(lambda: js.get_variable("w", [2])).params
    assert paths(params) == ["w"]


def test_name_containing_slash_nests_in_the_tree():
    def fn():
        with js.variable_scope("a"):
            return js.get_variable("x/y/w", [2])

    params = run_both(fn).params
    assert paths(params) == ["a/x/y/w"]
    assert params["a"]["x"]["y"]["w"].shape == (2,)


def test_name_containing_slash_is_the_same_variable_as_nested_scopes():
    def fn():
        with js.variable_scope("a"):
            v = js.get_variable("x/w", [2])
        with js.variable_scope("a/x", reuse=True):
            v1 = js.get_variable("w", [2])
        assert v1 is v
        return v

    assert paths(run_both(fn).params) == ["a/x/w"]


def test_get_variable_returns_a_jax_array():
    def fn():
        v = js.get_variable("w", [2, 3])
        assert isinstance(v, jax.Array)
        return v

    out = run_both(fn).out_init
    assert out.shape == (2, 3) and out.dtype == jnp.float32


def test_get_variable_outside_a_transform_is_a_runtime_error():
    with raises(js.errors.NoTransformError, RuntimeError, "js.transform"):
        js.get_variable("w", [1])


# --- Leaf versus sub-tree ---------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "tree"),
    [
        ("a/x", "a/x/y", {"a": {"x": ONE}}),
        ("a/x/y", "a/x", {"a": {"x": {"y": ONE}}}),
        ("x", "x/y/z", {"x": ONE}),
        ("a/x/y/z", "a/x", {"a": {"x": {"y": {"z": ONE}}}}),
    ],
    ids=["leaf_then_subtree", "subtree_then_leaf", "deep_subtree", "deep_leaf"],
)
@pytest.mark.parametrize("mode", MODES)
def test_leaf_and_subtree_at_one_path_raise_at_the_conflicting_call(mode, first, second, tree):
    reached = []

    def fn():
        js.get_variable(first, [1])
        reached.append("first")
        js.get_variable(second, [1])
        reached.append("second")

    with raises(js.errors.NameConflictError, ValueError, second, "rename"):
        run_in(mode, fn, tree)
    assert reached == ["first"]


def test_leaf_and_subtree_conflict_after_a_reuse_lookup_in_apply():
    def fn():
        with js.variable_scope("a", reuse=True):
            js.get_variable("x", [1])
        js.get_variable("a/x/y", [1])

    with raises(js.errors.NameConflictError, ValueError, "a/x/y", "rename"):
        js.transform(fn).apply({"a": {"x": ONE}})


def test_leaf_and_subtree_conflict_through_scopes():
    def fn():
        with js.variable_scope("a"):
            js.get_variable("x", [1])
            with js.variable_scope("x"):
                js.get_variable("y", [1])

    with raises(js.errors.NameConflictError, ValueError, "a/x/y", "a/x"):
        js.transform(fn).init(0)


def test_sibling_names_sharing_a_prefix_do_not_conflict():
    def fn():
        js.get_variable("a/x", [1])
        js.get_variable("a/xy", [1])
        js.get_variable("a/x_1/y", [1])

    assert paths(run_both(fn).params) == ["a/x", "a/x_1/y", "a/xy"]


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_creation_leaves_no_phantom_scope_below_it(mode):
    def fn():
        with pytest.raises(js.errors.ArgumentTypeError):
            js.get_variable("x4", initializer={})
        return js.get_variable("x4/y", [1])  # x4 was never created

    params = run_in(mode, fn, {"x4": {"y": ONE}})
    if mode == "init":
        assert paths(params[0]) == ["x4/y"]


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_creation_leaves_no_phantom_leaf_above_it(mode):
    def fn():
        with pytest.raises(js.errors.InitializerError):
            js.get_variable("k/z", [2], initializer=np.ones(3, np.float32))
        return js.get_variable("k", [1])  # k/z was never created

    params = run_in(mode, fn, {"k": ONE})
    if mode == "init":
        assert paths(params[0]) == ["k"]


def test_a_failed_creation_leaves_its_name_free():
    def fn():
        with pytest.raises(js.errors.InitializerError):  # init runs initializers
            js.get_variable("w", [2], initializer=lambda k, s, d: jnp.zeros(3, d))
        return js.get_variable("w", [2])

    assert paths(js.transform(fn).init(0)) == ["w"]


# --- Invalid names ----------------------------------------------------------


@pytest.mark.parametrize("name", ["", "v:0", "a//b", "/v", "v/", "/"])
def test_invalid_variable_names_are_value_errors(name):
    def fn():
        js.get_variable(name, [1])

    with raises(js.errors.InvalidNameError, ValueError, repr(name)):
        js.transform(fn).init(0)


def test_a_shape_holding_a_jit_traced_int_names_the_fix():
    def fn(n):
        return js.get_variable("w", [4, n])

    with raises(js.errors.ArgumentTypeError, TypeError, "w", "traced", "static_argnums"):
        jax.jit(js.transform(fn).init)(0, 3)
    params = jax.jit(js.transform(fn).init, static_argnums=1)(0, 3)  # the fix works
    assert params["w"].shape == (4, 3)


@pytest.mark.parametrize(
    ("shape", "error", "base"),
    [
        ("ab", js.errors.ArgumentTypeError, TypeError),
        ([2.5], js.errors.ArgumentTypeError, TypeError),
        ([-1], js.errors.InitializerError, ValueError),
    ],
    ids=["str", "float-dim", "negative-dim"],
)
def test_a_bad_shape_has_tf1s_base_type(shape, error, base):
    with raises(error, base, "w", "shape"):
        js.transform(lambda: js.get_variable("w", shape)).init(0)
