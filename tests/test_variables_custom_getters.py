"""Custom getters (DESIGN.md §3), called as TF1 calls them."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope._src import variables as variables_lib

from .conftest import paths, raises, run_both

# --- Custom getters ---------------------------------------------------------


def l2(v):
    return jnp.sum(v**2)


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
