"""``js.get_variable`` with reuse (DESIGN.md §3): reuse flags, lookups in the
tree given to ``apply``, and the shape and dtype asked for on reuse.

Error cases run in every mode (``init``, eager ``apply``, jitted ``apply``)
where the program can be given a tree, since both modes share one set of
checks.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import MODES, next_line, paths, raises, run_both, run_in

ONE = jnp.ones((1,), jnp.float32)


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
