"""``js.get_variable``'s initial values (DESIGN.md §3): concrete-value
initializers, the default initializers, and the dtypes they give.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import raises, run_both

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
