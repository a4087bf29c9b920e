"""``js.flatten`` / ``js.unflatten``: nested params trees and TF1's flat
``{"a/b/v": leaf}`` names (DESIGN.md §7)."""

from __future__ import annotations

import types

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
    apply = jax.jit(f.apply)
    np.testing.assert_array_equal(apply(restored, x), apply(params, x))


@pytest.mark.parametrize("name", ["a//b", "/a", "a/", "a:0", ""])
def test_unflatten_rejects_invalid_names(name):
    with pytest.raises(js.errors.InvalidNameError) as info:
        js.unflatten({name: 1})
    assert isinstance(info.value, ValueError)
    assert repr(name) in str(info.value)


def test_flatten_refuses_two_paths_that_give_one_name():
    with pytest.raises(js.errors.NameConflictError, match="a/b/c") as info:
        js.flatten({"a/b": {"c": 1}, "a": {"b": {"c": 2}}})  # neither leaf is dropped
    assert isinstance(info.value, ValueError) and "Fix" in str(info.value)


def test_flatten_descends_into_every_mapping():
    proxy = types.MappingProxyType({"w": 1, "inner": types.MappingProxyType({"b": 2})})
    assert js.flatten({"dense": proxy}) == {"dense/w": 1, "dense/inner/b": 2}


def test_flatten_drops_empty_sub_trees():
    assert js.flatten({"a": {}, "b": {"c": {}}, "d": 1}) == {"d": 1}


def test_unflatten_refuses_a_name_that_is_a_variable_and_a_scope():
    for flat in ({"a/x": 1, "a/x/y": 2}, {"a/x/y": 2, "a/x": 1}):
        with pytest.raises(js.errors.NameConflictError, match="a/x") as info:
            js.unflatten(flat)
        assert isinstance(info.value, ValueError)


def test_flatten_and_unflatten_handle_a_name_thousands_of_scopes_deep():
    name = "/".join(f"s{i}" for i in range(2000)) + "/w"
    nested = js.unflatten({name: 1, name[:-1] + "v": 2})
    assert js.flatten(nested) == {name: 1, name[:-1] + "v": 2}
