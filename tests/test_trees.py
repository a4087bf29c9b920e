"""``js.flatten`` / ``js.unflatten``: nested params trees and TF1's flat
``{"a/b/v": leaf}`` names (DESIGN.md §7)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

NESTED = {
    "encoder": {"lstm": {"w": 1, "b": 2}, "proj": {"w": 3}},
    "bias": 4,
}
FLAT = {"encoder/lstm/w": 1, "encoder/lstm/b": 2, "encoder/proj/w": 3, "bias": 4}


def test_flatten_gives_tf1_names():
    assert js.flatten(NESTED) == FLAT


def test_unflatten_nests_tf1_names():
    assert js.unflatten(FLAT) == NESTED


def test_unflatten_inverts_flatten():
    assert js.unflatten(js.flatten(NESTED)) == NESTED


def test_flatten_inverts_unflatten():
    assert js.flatten(js.unflatten(FLAT)) == FLAT


def test_flatten_of_an_empty_tree_is_empty():
    assert js.flatten({}) == {}
    assert js.unflatten({}) == {}


def test_flatten_keeps_the_leaves_themselves():
    leaf = jnp.ones((2, 3))
    assert js.flatten({"a": {"w": leaf}})["a/w"] is leaf


def test_params_round_trip_and_still_apply():
    def model(x):
        with js.variable_scope("encoder"):
            with js.variable_scope("lstm"):
                w = js.get_variable("w", [3, 2])
                b = js.get_variable("b", [2], initializer=js.initializers.ones)
        with js.variable_scope("head"):
            v = js.get_variable("v", [2, 1])
        return (x @ w + b) @ v

    f = js.transform(model)
    x = jnp.ones((1, 3))
    params = f.init(0, x)
    flat = js.flatten(params)
    assert sorted(flat) == ["encoder/lstm/b", "encoder/lstm/w", "head/v"]
    restored = js.unflatten(flat)
    assert jax.tree.structure(restored) == jax.tree.structure(params)
    np.testing.assert_array_equal(jax.jit(f.apply)(restored, x), f.apply(params, x))


@pytest.mark.parametrize("name", ["a//b", "/a", "a/", "a:0", ""])
def test_unflatten_rejects_invalid_names(name):
    with pytest.raises(js.errors.InvalidNameError) as info:
        js.unflatten({name: 1})
    assert isinstance(info.value, ValueError)
    assert repr(name) in str(info.value)
