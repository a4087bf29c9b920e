"""``js.get_variable``: names, reuse, apply lookups, initial values, dtypes,
regularizers, custom getters, state and constraints (DESIGN.md §3).

Programs run through ``init`` and jitted ``apply`` (``run_both``); error cases
run in every mode (``init``, eager ``apply``, jitted ``apply``) where the
program can be given a tree, since both modes share one set of checks.
"""

from __future__ import annotations

import contextlib
import inspect
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js
from jaxscope._src import variables as variables_lib

from .conftest import run_both

MODES = ["init", "apply", "jit_apply"]


def run_in(mode, fn, params=None, state=None, *args, rng=0):
    """Runs ``fn`` once in ``mode`` through ``transform_with_state``."""
    f = js.transform_with_state(fn)
    if mode == "init":
        return f.init(rng, *args)
    apply = f.apply if mode == "apply" else jax.jit(f.apply)
    return apply(params or {}, state or {}, *args, rng=rng)


@contextlib.contextmanager
def raises(error, base, *words):
    """``pytest.raises(error)``, also checking the builtin base type and that
    each of ``words`` appears in the message."""
    with pytest.raises(error) as info:
        yield info
    assert isinstance(info.value, base)
    assert isinstance(info.value, js.errors.ScopeError)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def paths(tree):
    return sorted(js.flatten(tree))


def next_line():
    """The line number after the caller's current line."""
    return inspect.currentframe().f_back.f_lineno + 1


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


# --- Reuse ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_second_creation_without_reuse_is_an_error_naming_origin_and_fix(mode):
    lines = []

    def fn():
        with js.variable_scope("foo"):
            lines.append(next_line())
            js.get_variable("v", [1])
        with js.variable_scope("foo"):
            js.get_variable("v", [1])

    where = f"{os.path.basename(__file__)}:"
    with raises(
        js.errors.VariableExistsError, ValueError, "foo/v", "reuse=True", "AUTO_REUSE"
    ) as info:
        run_in(mode, fn, {"foo": {"v": ONE}})
    assert f"{where}{lines[-1]}" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_creation_after_auto_reuse_obtain_is_an_error(mode):
    def fn():
        with js.variable_scope("foo", reuse=js.AUTO_REUSE):
            js.get_variable("v", [1])
        with js.variable_scope("foo"):
            js.get_variable("v", [1])

    with raises(js.errors.VariableExistsError, ValueError, "foo/v"):
        run_in(mode, fn, {"foo": {"v": ONE}})


def test_creation_after_reuse_lookup_in_apply_is_an_error():
    def fn():
        with js.variable_scope("foo", reuse=True):
            js.get_variable("v", [1])
        with js.variable_scope("foo"):
            js.get_variable("v", [1])

    with raises(js.errors.VariableExistsError, ValueError, "foo/v", "reuse=True"):
        js.transform(fn).apply({"foo": {"v": ONE}})


def test_name_is_unique_across_params_and_state():
    def fn():
        js.get_variable("v", [1])
        js.get_variable("v", [1], trainable=False)

    with raises(js.errors.VariableExistsError, ValueError, "v already exists"):
        js.transform_with_state(fn).init(0)


@pytest.mark.parametrize("reuse", [True, js.AUTO_REUSE])
def test_reuse_returns_the_very_same_object(reuse):
    def fn():
        with js.variable_scope("foo"):
            v = js.get_variable("v", [1])
        with js.variable_scope("foo", reuse=reuse):
            v1 = js.get_variable("v", [1])
        assert v1 is v
        return v

    assert paths(run_both(fn).params) == ["foo/v"]


def test_reuse_via_reuse_variables_returns_the_same_object():
    def fn():
        with js.variable_scope("foo") as scope:
            v = js.get_variable("v", [1])
            scope.reuse_variables()
            assert js.get_variable("v", [1]) is v
        return v

    run_both(fn)


def test_reuse_true_of_a_missing_variable_in_init_names_it_and_the_fix():
    def fn():
        with js.variable_scope("foo", reuse=True):
            js.get_variable("v", [1])

    with raises(js.errors.VariableMissingError, ValueError, "foo/v", "AUTO_REUSE"):
        js.transform(fn).init(0)


def test_reuse_true_in_apply_finds_the_variable_in_the_given_tree():
    """An inference function written entirely under reuse=True runs on
    trained params, though its own init fails (as in TF1)."""

    def infer(x):
        with js.variable_scope("dense", reuse=True):
            return x @ js.get_variable("w", [2, 3])

    w = jnp.arange(6.0).reshape(2, 3)
    f = js.transform(infer)
    x = jnp.ones((1, 2))
    np.testing.assert_array_equal(f.apply({"dense": {"w": w}}, x), x @ w)
    np.testing.assert_array_equal(jax.jit(f.apply)({"dense": {"w": w}}, x), x @ w)


@pytest.mark.parametrize("mode", ["apply", "jit_apply"])
def test_reuse_true_in_apply_of_a_variable_the_tree_lacks_is_an_error(mode):
    def fn():
        with js.variable_scope("dense", reuse=True):
            js.get_variable("kernel", [1])

    with raises(js.errors.VariableMissingError, ValueError, "dense/kernel", "dense/bias"):
        run_in(mode, fn, {"dense": {"bias": ONE}})


def test_auto_reuse_creates_when_missing_and_reuses_otherwise():
    def fn():
        vs = []
        for _ in range(3):
            with js.variable_scope("shared", reuse=js.AUTO_REUSE):
                vs.append(js.get_variable("v", [2]))
        assert vs[0] is vs[1] is vs[2]
        return vs[0]

    runs = run_both(fn)
    assert paths(runs.params) == ["shared/v"]


def test_trainable_flag_on_reuse_is_ignored():
    def fn():
        v = js.get_variable("v", [1], trainable=False)
        with js.variable_scope(js.get_variable_scope(), reuse=True):
            v1 = js.get_variable("v", [1], trainable=True)
        assert v1 is v
        return v

    runs = run_both(fn, with_state=True)
    assert paths(runs.params) == []
    assert paths(runs.state) == ["v"]


def test_reuse_true_in_apply_finds_a_state_variable():
    def infer():
        with js.variable_scope("bn", reuse=True):
            return js.get_variable("mean", [1])

    f = js.transform_with_state(infer)
    out, _ = f.apply({}, {"bn": {"mean": jnp.full((1,), 3.0)}})
    np.testing.assert_array_equal(out, [3.0])


def test_auto_reuse_in_apply_finds_a_state_variable_ignoring_trainable():
    def infer():
        with js.variable_scope("bn", reuse=js.AUTO_REUSE):
            return js.get_variable("mean", [1])

    f = js.transform_with_state(infer)
    out, _ = f.apply({}, {"bn": {"mean": jnp.full((1,), 3.0)}})
    np.testing.assert_array_equal(out, [3.0])


def test_auto_reuse_in_apply_accepts_the_stored_shape_and_dtype():
    """A first AUTO_REUSE obtain in apply is a lookup, checked as a reuse."""

    def infer():
        with js.variable_scope("a", reuse=js.AUTO_REUSE):
            return js.get_variable("v")

    params = {"a": {"v": jnp.ones((2, 3), jnp.bfloat16)}}
    out = js.transform(infer).apply(params)
    assert out.shape == (2, 3) and out.dtype == jnp.bfloat16


# --- Apply lookups ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["apply", "jit_apply"])
def test_missing_variable_in_apply_names_full_path_and_nearest_names(mode):
    def fn():
        with js.variable_scope("dense"):
            js.get_variable("kernel", [1])

    tree = {"dense": {"kernal": ONE, "bias": ONE}, "other": {"z": ONE}}
    with raises(js.errors.VariableMissingError, ValueError, "dense/kernel", "dense/kernal"):
        run_in(mode, fn, tree)


def test_apply_uses_the_values_of_the_given_tree():
    def fn():
        with js.variable_scope("a"):
            return js.get_variable("v", [2])

    value = jnp.array([7.0, 8.0])
    f = js.transform(fn)
    np.testing.assert_array_equal(f.apply({"a": {"v": value}}), value)
    np.testing.assert_array_equal(jax.jit(f.apply)({"a": {"v": value}}), value)


@pytest.mark.parametrize("mode", ["apply", "jit_apply"])
def test_shape_mismatch_in_apply_shows_both_shapes(mode):
    def fn():
        with js.variable_scope("a"):
            js.get_variable("v", [2])

    with raises(
        js.errors.ShapeMismatchError,
        ValueError,
        "Trying to share variable a/v, but specified shape (2,) and found shape (1,)",
    ):
        run_in(mode, fn, {"a": {"v": ONE}})


@pytest.mark.parametrize("mode", MODES)
def test_shape_mismatch_on_reuse_shows_both_shapes(mode):
    def fn():
        with js.variable_scope("a"):
            js.get_variable("v", [1])
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [2])

    with raises(
        js.errors.ShapeMismatchError,
        ValueError,
        "Trying to share variable a/v, but specified shape (2,) and found shape (1,)",
    ):
        run_in(mode, fn, {"a": {"v": ONE}})


def test_omitted_shape_on_reuse_accepts_the_stored_shape():
    def fn():
        with js.variable_scope("a"):
            v = js.get_variable("v", [2, 3])
        with js.variable_scope("a", reuse=True):
            v1 = js.get_variable("v")
        assert v1 is v
        return v1

    assert run_both(fn).out_init.shape == (2, 3)


def test_omitted_shape_on_reuse_in_apply_accepts_the_stored_shape():
    def infer():
        with js.variable_scope("a", reuse=True):
            return js.get_variable("v")

    out = js.transform(infer).apply({"a": {"v": jnp.ones((4, 5))}})
    assert out.shape == (4, 5)


def test_initializer_is_ignored_on_reuse():
    def exploding(key, shape, dtype):
        raise AssertionError("the initializer of a reused variable was called")

    def fn():
        with js.variable_scope("a"):
            v = js.get_variable("v", [2], initializer=js.initializers.ones)
        with js.variable_scope("a", reuse=True):
            v1 = js.get_variable("v", [2], initializer=exploding)
        with js.variable_scope("a", reuse=js.AUTO_REUSE):
            v2 = js.get_variable("v", [2], initializer=js.initializers.constant(5.0))
        assert v1 is v and v2 is v
        return v

    np.testing.assert_array_equal(run_both(fn).out_init, [1.0, 1.0])


def test_apply_never_calls_initializers():
    calls = []

    def counting(key, shape, dtype):
        calls.append(shape)
        return jnp.zeros(shape, dtype)

    def fn():
        return js.get_variable("v", [2], initializer=counting)

    f = js.transform(fn)
    params = f.init(0)
    assert len(calls) == 1
    f.apply(params)
    jax.jit(f.apply)(params)
    assert len(calls) == 1


@pytest.mark.parametrize("mode", ["apply", "jit_apply"])
def test_flat_params_given_to_apply_name_the_unflatten_fix(mode):
    def fn():
        with js.variable_scope("dense"):
            return js.get_variable("kernel", [2])

    flat = js.flatten(js.transform(fn).init(0))  # as an .npz file holds them
    with raises(js.errors.VariableMissingError, ValueError, "dense/kernel", "js.unflatten") as info:
        run_in(mode, fn, flat)
    assert "Nearest names" not in str(info.value)
    run_in(mode, fn, js.unflatten(flat))  # the fix works


# --- Dtypes on reuse --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_explicit_dtype_on_reuse_must_match_the_stored_dtype(mode):
    def fn():
        js.get_variable("v", [1])
        with js.variable_scope(js.get_variable_scope(), reuse=True):
            js.get_variable("v", [1], dtype=jnp.float16)

    with raises(js.errors.DtypeMismatchError, ValueError, "v", "float16", "float32"):
        run_in(mode, fn, {"v": ONE})


@pytest.mark.parametrize("mode", MODES)
def test_scope_dtype_on_reuse_must_match_the_stored_dtype(mode):
    def fn():
        with js.variable_scope("a"):
            js.get_variable("v", [1])
        with js.variable_scope("a", reuse=True, dtype=jnp.float16):
            js.get_variable("v", [1])

    with raises(js.errors.DtypeMismatchError, ValueError, "a/v", "float16", "float32"):
        run_in(mode, fn, {"a": {"v": ONE}})


@pytest.mark.parametrize("mode", MODES)
def test_reuse_with_a_concrete_initializer_asks_for_the_scopes_dtype(mode):
    value = np.ones(2, np.float32)

    def fn():
        js.get_variable("w", initializer=value)
        with js.variable_scope(js.get_variable_scope(), reuse=True, dtype=jnp.float16):
            js.get_variable("w", initializer=value)  # TF1: a ValueError too

    with raises(js.errors.DtypeMismatchError, ValueError, "w", "float16", "float32"):
        run_in(mode, fn, {"w": jnp.ones(2)})


def test_a_concrete_initializer_keeps_its_dtype_in_a_dtype_scope_in_init_and_apply():
    def fn():
        with js.variable_scope("s", dtype=jnp.float16, reuse=js.AUTO_REUSE):
            return js.get_variable("w", initializer=np.ones(2, np.float32))

    runs = run_both(fn)
    assert runs.params["s"]["w"].dtype == jnp.float32
    assert runs.out_jit.dtype == jnp.float32


def test_root_float32_default_does_not_count_on_reuse():
    def fn():
        v = js.get_variable("v", [1], dtype=jnp.float16)
        with js.variable_scope(js.get_variable_scope(), reuse=True):
            v1 = js.get_variable("v", [1])
        assert v1 is v
        return v1

    assert run_both(fn).out_init.dtype == jnp.float16


def test_reuse_in_apply_without_dtype_accepts_the_stored_dtype():
    def infer():
        with js.variable_scope("a", reuse=True):
            return js.get_variable("v", [1])

    params = {"a": {"v": jnp.ones((1,), jnp.bfloat16)}}
    assert js.transform(infer).apply(params).dtype == jnp.bfloat16
    assert jax.jit(js.transform(infer).apply)(params).dtype == jnp.bfloat16


@pytest.mark.parametrize("mode", ["apply", "jit_apply"])
def test_apply_with_a_tree_of_another_dtype_is_an_error(mode):
    def fn():
        with js.variable_scope("a"):
            js.get_variable("v", [1])

    params = {"a": {"v": jnp.ones((1,), jnp.bfloat16)}}
    with raises(js.errors.DtypeMismatchError, ValueError, "a/v", "float32", "bfloat16"):
        run_in(mode, fn, params)


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


# --- Concrete-value initializers -------------------------------------------


def test_concrete_initializer_defines_the_shape():
    def fn():
        return js.get_variable("v", initializer=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])

    runs = run_both(fn)
    np.testing.assert_array_equal(runs.params["v"], [[1, 2, 3], [4, 5, 6]])
    assert runs.params["v"].shape == (2, 3)


def test_concrete_initializer_with_agreeing_shape_is_accepted():
    def fn():
        return js.get_variable("v", [3], initializer=np.array([1.0, 2.0, 3.0], np.float32))

    np.testing.assert_array_equal(run_both(fn).params["v"], [1, 2, 3])


def test_concrete_scalar_initializer_makes_a_scalar():
    params = run_both(lambda: js.get_variable("v", initializer=2.5)).params
    assert params["v"].shape == ()
    assert float(params["v"]) == 2.5


def test_concrete_initializer_with_disagreeing_shape_is_a_value_error():
    def fn():
        js.get_variable("v", [2], initializer=[1.0, 2.0, 3.0])

    with raises(js.errors.InitializerError, ValueError, "v", "(3,)", "(2,)"):
        js.transform(fn).init(0)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (1.5, jnp.float32),
        ([1.0, 2.0], jnp.float32),
        (3, jnp.int32),
        ([[1, 2], [3, 4]], jnp.int32),
        ([True, False], jnp.bool_),
    ],
    ids=["float", "float_list", "int", "int_list", "bool_list"],
)
def test_concrete_python_values_get_tf1_dtypes(value, dtype):
    params = run_both(lambda: js.get_variable("v", initializer=value)).params
    assert params["v"].dtype == dtype
    np.testing.assert_array_equal(params["v"], np.asarray(value))


def test_concrete_array_initializer_keeps_its_dtype():
    value = jnp.array([1, 2], jnp.int8)
    params = run_both(lambda: js.get_variable("v", initializer=value)).params
    assert params["v"].dtype == jnp.int8


def test_scope_dtype_does_not_apply_to_a_concrete_initializer():
    def fn():
        with js.variable_scope("s", dtype=jnp.float16):
            return js.get_variable("v", initializer=1.0)

    assert js.transform(fn).init(0)["s"]["v"].dtype == jnp.float32


def test_explicit_dtype_casts_a_concrete_initializer():
    def fn():
        a = js.get_variable("a", initializer=[1, 2], dtype=jnp.float32)
        b = js.get_variable("b", initializer=0.1, dtype=jnp.float16)
        return a, b

    params = run_both(fn).params
    assert params["a"].dtype == jnp.float32
    np.testing.assert_array_equal(params["a"], [1.0, 2.0])
    assert params["b"].dtype == jnp.float16
    assert params["b"] == jnp.float16(0.1)


@pytest.mark.parametrize("initializer", [None, js.initializers.zeros])
def test_missing_shape_without_a_concrete_initializer_is_a_value_error(initializer):
    def fn():
        with js.variable_scope("a"):
            js.get_variable("v", initializer=initializer)

    with raises(js.errors.InitializerError, ValueError, "a/v", "shape"):
        js.transform(fn).init(0)


# --- Default initializers and dtypes ---------------------------------------


@pytest.mark.parametrize("shape", [(), (7,), (100, 400)], ids=["scalar", "vector", "matrix"])
def test_default_float_initializer_is_glorot_uniform(shape):
    """Init keys depend on the name only, so the default gives the values an
    explicit glorot_uniform() gives (scalars and vectors included)."""

    def default():
        return js.get_variable("v", shape)

    def explicit():
        return js.get_variable("v", shape, initializer=js.initializers.glorot_uniform())

    ours = np.asarray(js.transform(default).init(0)["v"])
    np.testing.assert_array_equal(ours, js.transform(explicit).init(0)["v"])
    assert ours.shape == shape and np.all(ours != 0)


def test_default_float_initializer_range_follows_tf1_glorot_limit():
    shape = (100, 400)  # js.initializers' tests check the fan rules for every rank
    value = np.asarray(js.transform(lambda: js.get_variable("v", shape)).init(0)["v"])
    limit = np.sqrt(6.0 / (100 + 400))
    assert np.abs(value).max() <= limit
    assert np.abs(value).max() > 0.98 * limit
    np.testing.assert_allclose(value.std(), limit / np.sqrt(3), rtol=0.05)


def test_default_initializer_is_random_not_constant():
    value = np.asarray(js.transform(lambda: js.get_variable("v", [100])).init(0)["v"])
    assert len(np.unique(value)) == 100


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_default_initializer_of_int_and_bool_is_zeros(dtype):
    params = run_both(lambda: js.get_variable("v", [3], dtype=dtype)).params
    assert params["v"].dtype == dtype
    np.testing.assert_array_equal(params["v"], np.zeros(3, dtype))


def test_scope_initializer_is_the_default():
    def fn():
        with js.variable_scope("a", initializer=js.initializers.constant(0.5)):
            return js.get_variable("v", [2])

    np.testing.assert_array_equal(run_both(fn).params["a"]["v"], [0.5, 0.5])


def test_dtype_defaults_to_float32():
    assert run_both(lambda: js.get_variable("v", [2])).params["v"].dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.int32])
def test_dtype_defaults_to_the_scopes(dtype):
    def fn():
        with js.variable_scope("a", dtype=dtype):
            with js.variable_scope("b"):
                return js.get_variable("v", [2])

    assert run_both(fn).params["a"]["b"]["v"].dtype == dtype


def test_explicit_dtype_overrides_the_scopes():
    def fn():
        with js.variable_scope("a", dtype=jnp.float16):
            return js.get_variable("v", [2], dtype=jnp.bfloat16)

    assert run_both(fn).params["a"]["v"].dtype == jnp.bfloat16


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


# --- Custom getters ---------------------------------------------------------


def test_custom_getter_receives_full_name_and_every_argument_on_creation():
    seen = []
    reg, con, init = l2, (lambda v: v), js.initializers.ones

    def getter(getter, name, **kwargs):
        seen.append((name, kwargs))
        return getter(name, **kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=getter):
            with js.variable_scope("b"):
                js.get_variable(
                    "w", [3], jnp.float32, init, regularizer=reg, trainable=True, constraint=con
                )

    js.transform(fn).init(0)
    [(name, kwargs)] = seen
    assert name == "a/b/w"
    assert tuple(kwargs["shape"]) == (3,)
    assert kwargs["dtype"] == jnp.float32
    assert kwargs["initializer"] is init
    assert kwargs["regularizer"] is reg
    assert kwargs["trainable"] is True
    assert kwargs["constraint"] is con
    assert "sharding" in kwargs


def test_custom_getter_is_called_on_reuse_too():
    seen = []

    def getter(getter, name, **kwargs):
        seen.append(name)
        return getter(name, **kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=getter):
            v = js.get_variable("w", [1])
        with js.variable_scope("a", custom_getter=getter, reuse=True):
            v1 = js.get_variable("w", [1])
        assert v1 is v

    run_both(fn)
    assert seen == ["a/w", "a/w"] * 3  # init, apply, jitted apply


def test_custom_getter_on_reuse_receives_the_reuse_call_arguments():
    seen = []

    def getter(getter, name, **kwargs):
        seen.append(kwargs)
        return getter(name, **kwargs)

    def fn():
        js.get_variable("w", [2])
        with js.variable_scope(js.get_variable_scope(), reuse=True, custom_getter=getter):
            js.get_variable("w", dtype=jnp.float32, trainable=False)

    js.transform(fn).init(0)
    [kwargs] = seen
    assert kwargs["shape"] is None
    assert kwargs["dtype"] == jnp.float32
    assert kwargs["trainable"] is False


def test_custom_getter_return_value_is_handed_back():
    def doubling(getter, name, **kwargs):
        return 2.0 * getter(name, **kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=doubling, initializer=js.initializers.ones):
            return js.get_variable("w", [2])

    runs = run_both(fn)
    np.testing.assert_array_equal(runs.params["a"]["w"], [1.0, 1.0])
    np.testing.assert_array_equal(runs.out_jit, [2.0, 2.0])


def test_custom_getter_can_change_the_arguments_it_passes_on():
    def to_bf16(getter, name, **kwargs):
        kwargs["dtype"] = jnp.bfloat16
        return getter(name, **kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=to_bf16):
            return js.get_variable("w", [2])

    assert run_both(fn).params["a"]["w"].dtype == jnp.bfloat16


# TF1's keywords for a custom getter (tensorflow/python/ops/variable_scope.py,
# _VariableStore.get_variable), and jaxscope's sharding.
TF1_GETTER_KEYWORDS = {
    "getter", "name", "shape", "dtype", "initializer", "regularizer", "reuse", "trainable",
    "collections", "caching_device", "partitioner", "validate_shape", "use_resource",
    "synchronization", "aggregation", "constraint",
}  # fmt: skip
# TF1's _true_getter, positionally.
TF1_GETTER_ORDER = (
    "name", "shape", "dtype", "initializer", "regularizer", "reuse", "trainable", "collections",
    "caching_device", "partitioner", "validate_shape", "use_resource", "constraint",
    "synchronization", "aggregation",
)  # fmt: skip


def test_custom_getter_is_called_entirely_by_keyword_with_tf1s_keywords():
    seen = []

    def getter(**kwargs):
        seen.append(dict(kwargs))
        return kwargs.pop("getter")(**kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=getter):
            js.get_variable("w", [2])

    js.transform(fn).init(0)
    [kwargs] = seen
    assert set(kwargs) == TF1_GETTER_KEYWORDS | {"sharding"}
    assert (kwargs["name"], kwargs["reuse"], kwargs["trainable"]) == ("a/w", False, True)
    # The keywords meaning nothing here come as TF1's defaults.
    assert kwargs["collections"] is None and kwargs["caching_device"] is None
    assert kwargs["validate_shape"] is True and kwargs["use_resource"] is None
    assert kwargs["synchronization"] is variables_lib.VariableSynchronization.AUTO
    assert kwargs["aggregation"] is variables_lib.VariableAggregation.NONE


def test_a_getter_passing_every_keyword_on_works():
    def g(**kw):
        return kw.pop("getter")(**kw)

    def fn():
        with js.variable_scope("a", custom_getter=g, initializer=js.initializers.ones):
            return js.get_variable("w", [2], constraint=lambda v: v)

    runs = run_both(fn)
    np.testing.assert_array_equal(runs.params["a"]["w"], [1.0, 1.0])


def test_the_getter_handed_on_takes_tf1s_positional_order():
    def positional(getter, **kwargs):
        return getter(*(kwargs[key] for key in TF1_GETTER_ORDER))

    def fn():
        with js.variable_scope("a", custom_getter=positional, dtype=jnp.float16):
            with js.variable_scope("b", reuse=js.AUTO_REUSE):
                v = js.get_variable("w", [2], initializer=js.initializers.ones)
                assert js.get_variable("w", [2]) is v  # the reuse flag went through
                return v

    runs = run_both(fn)
    assert runs.params["a"]["b"]["w"].dtype == jnp.float16
    np.testing.assert_array_equal(runs.params["a"]["b"]["w"], [1.0, 1.0])


def test_a_getter_naming_only_tf1s_older_parameters_gets_no_constraint_or_sharding():
    # A getter written before TF1 added `constraint` names each parameter.
    def getter(
        getter, name, shape, dtype, initializer, regularizer, reuse, trainable, collections,
        caching_device, partitioner, validate_shape, use_resource, synchronization, aggregation,
    ):  # fmt: skip
        return getter(name, shape, dtype, initializer, regularizer, reuse, trainable)

    def fn():
        with js.variable_scope("a", custom_getter=getter):
            return js.get_variable("w", [2])

    assert paths(run_both(fn).params) == ["a/w"]


def test_nvidias_float32_storage_getter_works_verbatim():
    import types

    tf = types.SimpleNamespace(float32=jnp.float32, cast=lambda value, dtype: value.astype(dtype))

    # From NVIDIA's mixed-precision training guide, unchanged.
    # fmt: off
    def float32_variable_storage_getter(getter, name, shape=None, dtype=None,
                                        initializer=None, regularizer=None,
                                        trainable=True,
                                        *args, **kwargs):
        """Custom variable getter that forces trainable variables to be stored in
        float32 precision and then casts them to the training precision.
        """
        storage_dtype = tf.float32 if trainable else dtype
        variable = getter(name, shape, dtype=storage_dtype,
                          initializer=initializer, regularizer=regularizer,
                          trainable=trainable,
                          *args, **kwargs)  # noqa: B026
        if trainable and dtype != tf.float32:
            variable = tf.cast(variable, dtype)
        return variable
    # fmt: on

    def fn(x):
        with js.variable_scope(
            "fp16", custom_getter=float32_variable_storage_getter, dtype=jnp.float16
        ):
            w = js.get_variable("w", [2, 3])
            count = js.get_variable("count", [], jnp.int32, trainable=False)
        return x.astype(jnp.float16) @ w, count

    runs = run_both(fn, jnp.ones((1, 2)), with_state=True)
    assert runs.params["fp16"]["w"].dtype == jnp.float32  # stored in float32
    assert runs.state["fp16"]["count"].dtype == jnp.int32
    assert runs.out_jit[0].dtype == jnp.float16  # computed in float16


@pytest.mark.parametrize(
    ("rename", "error", "base"),
    [
        (lambda name: name + ":0", js.errors.InvalidNameError, ValueError),
        (lambda name: name + "/", js.errors.InvalidNameError, ValueError),
        (lambda name: "", js.errors.InvalidNameError, ValueError),
        (lambda name: "s//w", js.errors.InvalidNameError, ValueError),
        (lambda name: [name], js.errors.ArgumentTypeError, TypeError),
    ],
    ids=["output-suffix", "trailing-slash", "empty", "empty-component", "list"],
)
def test_a_name_a_custom_getter_passes_on_is_validated(rename, error, base):
    def getter(getter, name, *args, **kwargs):
        return getter(rename(name), *args, **kwargs)

    def fn():
        with js.variable_scope("a", custom_getter=getter):
            return js.get_variable("w", [1])

    with raises(error, base, "custom-getter variable name", "Fix"):
        js.transform(fn).init(0)


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
