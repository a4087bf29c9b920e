"""A catalogue of misuses (issue 8): every bad input fails loudly and precisely.

Each entry of ``CATALOGUE`` is one bad input: a model, a tree or a call that
a user gets wrong. Two tests run every entry: one checks the error's type
(the ``js.errors`` class and the built-in base TF1 raised), the other that
the message names the variable path (or the scope, or the function misused,
where no variable is involved) and the fix. Programs whose error is the same
in ``init`` and ``apply`` run through both, ``apply`` jitted.

The rest of the file checks what a failed call leaves behind: nothing. The
next call works from a clean slate, and the caller's trees are untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

import jaxscope as js
from jaxscope import errors


@dataclasses.dataclass(frozen=True)
class Misuse:
    """One bad input and the error it must raise."""

    error: type[Exception]
    base: type[Exception]
    words: tuple[str, ...]  # the path (or what is misused) and the fix
    triggers: tuple[Callable[[], object], ...]
    bug: str | None = None  # the library raises no error, or the wrong type
    message_bug: str | None = None  # right type, message lacks a word


def _transform(fn, stateful=False, check_unused=False):
    make = js.transform_with_state if stateful else js.transform
    return make(fn, check_unused=check_unused)


def in_init(fn, *args, stateful=False):
    return lambda: _transform(fn, stateful).init(0, *args)


def in_apply(fn, tree, *args, stateful=False, check_unused=False, jit=True):
    """``apply`` on ``tree`` (``(params, state)`` when stateful), jitted
    unless the tree holds leaves that jit would turn into arrays."""
    f = _transform(fn, stateful, check_unused)
    apply = jax.jit(f.apply) if jit else f.apply
    trees = tree if stateful else (tree,)
    return lambda: apply(*trees, *args)


def in_both(fn, tree, *args, stateful=False):
    return (in_init(fn, *args, stateful=stateful), in_apply(fn, tree, *args, stateful=stateful))


def case(error, base, words, *triggers, bug=None, message_bug=None):
    return Misuse(error, base, tuple(words), tuple(triggers), bug, message_bug)


# --- Models used by several entries ------------------------------------------------


def _dense(x):
    with js.variable_scope("dense"):
        w = js.get_variable("kernel", [x.shape[-1], 2])
        b = js.get_variable("bias", [2], initializer=js.initializers.zeros)
    return x @ w + b


X = jnp.ones((1, 3))
DENSE = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}


def _vector(x):
    with js.variable_scope("dense"):
        return x @ js.get_variable("w", [2])


def _with_state():
    with js.variable_scope("bn"):
        w = js.get_variable("w", [2])
        count = js.get_variable("count", [], jnp.int32, trainable=False)
    return w, count


STATE_TREES = ({"bn": {"w": jnp.ones(2)}}, {"bn": {"count": jnp.zeros((), jnp.int32)}})


def _captured_scope(name="enc"):
    """A scope captured in a call that has ended."""
    captured = []

    def model():
        with js.variable_scope(name) as scope:
            js.get_variable("w", [1])
        captured.append(scope)

    js.transform(model).init(0)
    return captured[0]


def _reenter_stale():
    stale = _captured_scope()

    def model():
        with js.variable_scope(stale, reuse=True):
            return js.get_variable("w", [1])

    return js.transform(model).init(0)


def _stale_get_variable():
    stale = _captured_scope()
    return js.transform(lambda: stale.get_variable("w", [1])).init(0)


def _stale_root_scope():
    captured = []
    js.transform(lambda: captured.append(js.get_variable_scope())).init(0)

    def model():
        with js.variable_scope(captured[0]):
            pass

    return js.transform(model).init(0)


def _outer_scope_in_nested_call():
    def outer():
        with js.variable_scope("outer") as scope:
            return js.transform(lambda: scope.get_variable("w", [1])).init(0)

    return js.transform(outer).init(0)


def _with_mesh(fn):
    def run():
        with jax.set_mesh(jax.make_mesh((1,), ("data",))):
            return js.transform(fn).init(0)

    return run


def _raw(transform):
    """A model creating ``rnn/cell/w`` inside the raw JAX ``transform``."""

    def make(x):
        with js.variable_scope("rnn/cell"):
            return transform(x)

    return make


_RAW = {
    "scan": _raw(
        lambda x: jax.lax.scan(lambda c, xi: (c * js.get_variable("w", []), None), x, None, 2)[0]
    ),
    "vmap": _raw(lambda x: jax.vmap(lambda r: r * js.get_variable("w", []))(jnp.ones(3) * x)),
    "jit": _raw(lambda x: jax.jit(lambda r: r * js.get_variable("w", []))(x)),
    "checkpoint": _raw(lambda x: jax.checkpoint(lambda r: r * js.get_variable("w", []))(x)),
    "while_loop": _raw(
        lambda x: jax.lax.while_loop(lambda c: c < 3, lambda c: c + js.get_variable("w", []), x)
    ),
    "cond": _raw(
        lambda x: jax.lax.cond(x > 0, lambda r: r * js.get_variable("w", []), lambda r: r, x)
    ),
}
_RAW_FIX = {
    "scan": "js.scan",
    "vmap": "js.vmap",
    "jit": "before entering",
    "checkpoint": "js.remat",
    "while_loop": "js.while_loop",
    "cond": "js.cond",
}


def _leave_open(enter):
    def model():
        enter()
        return js.get_variable("w", [1])

    return model


def _exit_out_of_order(inner):
    def model():
        outer = js.variable_scope("outer")
        outer.__enter__()
        inner().__enter__()
        outer.__exit__(None, None, None)

    return model


def _assigns(get, value, name="c"):
    def model():
        with js.variable_scope("bn"):
            get()
            js.assign(name, value())

    return model


def _gv(*args, **kwargs):
    """A model calling ``get_variable`` once under scope ``enc``."""

    def model():
        with js.variable_scope("enc"):
            return js.get_variable(*args, **kwargs)

    return model


def _scoped(*args, **kwargs):
    """A model getting ``w`` inside ``variable_scope(*args, **kwargs)``."""

    def model():
        with js.variable_scope(*args, **kwargs):
            return js.get_variable("w", [1])

    return model


def _twice(first, second):
    """A model running ``first`` then ``second``."""

    def model():
        first()
        return second()

    return model


def _in(scope_args, get):
    """A model running ``get`` inside ``variable_scope`` opened with
    ``scope_args``, made by :func:`_scope`."""

    def model():
        with js.variable_scope(*scope_args[0], **scope_args[1]):
            return get()

    return model


def _scope(*args, **kwargs):
    return args, kwargs


def _created_then_reused(reuse_kwargs, **get_kwargs):
    """Creates ``enc/w`` of shape (2,), then asks for it again."""

    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [2])
        with js.variable_scope("enc", **reuse_kwargs):
            return js.get_variable("w", **get_kwargs)

    return model


def _initializer(init, shape=(2,)):
    return _gv("w", list(shape), initializer=init)


def _assign_in_while_condition(x):
    with js.variable_scope("bn"):
        js.get_variable("n", [], trainable=False)

        def below_three(i):
            js.assign("n", i)
            return i < 3

        return js.while_loop(below_three, lambda i: i + 1.0, x)


def _assign_per_example_in_vmap(xs):
    with js.variable_scope("bn"):
        js.get_variable("n", [], trainable=False)
        return js.vmap(lambda x: js.assign("n", x))(xs)


def _captured_reusing_scope():
    with js.variable_scope("enc", reuse=True) as scope:
        pass
    return scope.get_variable("w", [1])


def _assign_in_raw_scan(xs):
    with js.variable_scope("bn"):
        n = js.get_variable("n", [], trainable=False)

        def step(carry, x):
            js.assign("n", n + x)
            return carry, None

        return jax.lax.scan(step, 0.0, xs)[0]


def _dropout():
    with js.variable_scope("drop"):
        return jax.random.bernoulli(js.next_rng_key(), 0.5, (2,))


def _generator_model():
    yield js.get_variable("w", [1])


def _stack_in_stack(x):
    inner = js.layer_stack(2)(lambda h: h * js.get_variable("w", [1]))
    return js.layer_stack(3)(inner)(x)


def _growing_layer(x):
    return js.layer_stack(2)(lambda h: jnp.concatenate([h, h]))(x)


FIX_REUSE = ("reuse=True", "js.AUTO_REUSE")
V = ValueError
R = RuntimeError
ENC_W = {"enc": {"w": jnp.zeros(2)}}
ENC_W1 = {"enc": {"w": jnp.zeros(1)}}

# --- The catalogue --------------------------------------------------------------------

_SCALE_TEMPLATE = js.make_template(
    "tmpl", lambda x, name: x * js.get_variable(name, [], initializer=js.initializers.ones)
)


CATALOGUE: dict[str, Misuse] = {
    # Wrong reuse, in every direction.
    "create_twice": case(
        errors.VariableExistsError,
        V,
        ("enc/w", "already exists", "created at", *FIX_REUSE),
        *in_both(_created_then_reused({}, shape=[2]), ENC_W),
    ),
    "create_after_an_auto_reuse_creation": case(
        errors.VariableExistsError,
        V,
        ("enc/w", "already exists", *FIX_REUSE),
        *in_both(
            _twice(
                _in(_scope("enc", reuse=js.AUTO_REUSE), lambda: js.get_variable("w", [2])),
                _in(_scope("enc"), lambda: js.get_variable("w", [2])),
            ),
            ENC_W,
        ),
    ),
    "reuse_before_creation": case(
        errors.VariableMissingError,
        V,
        ("enc/w", "does not exist", "reuse=None", "js.AUTO_REUSE"),
        in_init(_scoped("enc", reuse=True)),
    ),
    "reuse_missing_from_the_tree_given_to_apply": case(
        errors.VariableMissingError,
        V,
        ("enc/w", "enc/v", "Fix"),
        in_apply(_scoped("enc", reuse=True), {"enc": {"v": jnp.zeros(1)}}),
    ),
    "reuse_false_cannot_turn_reuse_off": case(
        errors.VariableMissingError,
        V,
        ("enc/inner/w", "js.AUTO_REUSE"),
        in_init(_in(_scope("enc", reuse=True), _scoped("inner", reuse=False))),
    ),
    "new_name_after_reuse_variables": case(
        errors.VariableMissingError,
        V,
        ("enc/v", "js.AUTO_REUSE"),
        in_init(
            _in(
                _scope("enc"),
                lambda: (
                    js.get_variable("w", [1]),
                    js.get_variable_scope().reuse_variables(),
                    js.get_variable("v", [1]),
                ),
            )
        ),
    ),
    "captured_reusing_scope_asked_for_a_new_name": case(
        errors.VariableMissingError,
        V,
        ("enc/w", "js.AUTO_REUSE"),
        in_init(_captured_reusing_scope),
    ),
    "reuse_by_name_of_a_default_name_not_yet_numbered": case(
        errors.VariableMissingError,
        V,
        ("layer_1/w", "js.AUTO_REUSE"),
        in_init(
            _twice(
                _in(_scope(None, default_name="layer"), lambda: js.get_variable("w", [1])),
                _scoped("layer_1", reuse=True),
            )
        ),
    ),
    "default_name_with_reuse_true": case(
        errors.ScopeArgumentError,
        V,
        ("default_name='layer'", "reuse=True", "Fix", "captured scope"),
        in_init(_scoped(None, default_name="layer", reuse=True)),
    ),
    "default_name_with_auto_reuse": case(
        errors.ScopeArgumentError,
        V,
        ("default_name='layer'", "js.AUTO_REUSE", "Fix"),
        in_init(_scoped(None, default_name="layer", reuse=js.AUTO_REUSE)),
    ),
    "scope_without_name_or_default_name": case(
        errors.ArgumentTypeError,
        TypeError,
        ("name_or_scope", "default_name", "Fix"),
        in_init(_scoped(None)),
    ),
    "scope_name_of_the_wrong_type": case(
        errors.ArgumentTypeError,
        TypeError,
        ("name_or_scope", "int", "Fix"),
        in_init(_scoped(3)),
    ),
    "reuse_flag_that_is_not_true_false_none_or_auto_reuse": case(
        errors.ScopeArgumentError,
        V,
        ("reuse", "js.AUTO_REUSE", "Fix"),
        in_init(_scoped("enc", reuse=1)),
    ),
    # Shape and dtype mismatch.
    "shape_mismatch_on_reuse_in_one_call": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "specified shape (3,)", "found shape (2,)", "omit shape"),
        *in_both(_created_then_reused({"reuse": True}, shape=[3]), ENC_W),
    ),
    "dtype_mismatch_on_reuse_in_one_call": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "int32", "float32", "omit dtype"),
        *in_both(_created_then_reused({"reuse": True}, dtype=jnp.int32), ENC_W),
    ),
    "shape_mismatch_on_auto_reuse": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "(3,)", "(2,)", "omit shape"),
        *in_both(_created_then_reused({"reuse": js.AUTO_REUSE}, shape=[3]), ENC_W),
    ),
    "dtype_mismatch_on_auto_reuse": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "bfloat16", "float32"),
        *in_both(_created_then_reused({"reuse": js.AUTO_REUSE}, dtype=jnp.bfloat16), ENC_W),
    ),
    "shape_mismatch_with_the_tree_given_to_apply": case(
        errors.ShapeMismatchError,
        V,
        ("dense/w", "specified shape (2,)", "found shape (3,)", "params made for this model"),
        in_apply(_vector, {"dense": {"w": jnp.zeros(3)}}, jnp.ones(2)),
    ),
    "dtype_mismatch_with_the_tree_given_to_apply": case(
        errors.DtypeMismatchError,
        V,
        ("dense/w", "int32", "float32", "cast the params tree"),
        in_apply(_vector, {"dense": {"w": jnp.zeros(2, jnp.int32)}}, jnp.ones(2)),
    ),
    "dtype_of_a_scope_disagreeing_with_the_tree_given_to_apply": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "bfloat16", "float32"),
        in_apply(_scoped("enc", dtype=jnp.bfloat16), {"enc": {"w": jnp.zeros(1)}}),
    ),
    "concrete_initializer_disagreeing_with_the_tree_given_to_apply": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "(2,)", "(3,)"),
        in_apply(_gv("w", initializer=jnp.zeros(2)), {"enc": {"w": jnp.zeros(3)}}),
    ),
    # Apply with a missing, misspelled or extra variable.
    "apply_with_an_empty_tree": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "the tree is empty", "params that init returned"),
        in_apply(_dense, {}, X),
    ),
    "apply_with_a_misspelled_variable": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "Nearest names present: dense/kernal", "Fix"),
        in_apply(_dense, {"dense": {"kernal": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}, X),
    ),
    "apply_with_a_misspelled_scope": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "dense_1/kernel", "check the variable's scope"),
        in_apply(_dense, {"dense_1": DENSE["dense"]}, X),
    ),
    "apply_with_an_extra_variable_under_check_unused": case(
        errors.UnusedVariableError,
        V,
        ("dense/extra", "never obtained", "drop them from the tree"),
        in_apply(_dense, {"dense": {**DENSE["dense"], "extra": jnp.ones(1)}}, X, check_unused=True),
    ),
    "apply_with_an_extra_state_variable_under_check_unused": case(
        errors.UnusedVariableError,
        V,
        ("bn/old_count", "never obtained", "Fix"),
        in_apply(
            _with_state,
            (STATE_TREES[0], {"bn": {**STATE_TREES[1]["bn"], "old_count": jnp.zeros(())}}),
            stateful=True,
            check_unused=True,
        ),
    ),
    # Params of the wrong structure, or leaves that are not arrays.
    "apply_with_a_leaf_where_a_subtree_belongs": case(
        errors.InvalidParamsError,
        V,
        ("dense/kernel", "sub-tree at 'dense'", "params tree that init returned"),
        in_apply(_dense, {"dense": jnp.ones((3, 2))}, X),
    ),
    "apply_with_a_subtree_where_a_leaf_belongs": case(
        errors.InvalidParamsError,
        V,
        ("dense/kernel", "sub-tree", "rename the variable"),
        in_apply(_dense, {"dense": {"kernel": {"w": jnp.ones((3, 2))}, "bias": jnp.zeros(2)}}, X),
    ),
    "apply_with_params_that_are_a_list": case(
        errors.InvalidParamsError,
        V,
        ("params", "list", "Fix"),
        in_apply(_dense, [DENSE], X),
    ),
    "apply_with_params_that_are_an_array": case(
        errors.InvalidParamsError,
        V,
        ("params", "Fix"),
        in_apply(_dense, jnp.ones((3, 2)), X),
    ),
    "apply_with_state_that_is_not_a_dict": case(
        errors.InvalidParamsError,
        V,
        ("state", "int", "both trees"),
        in_apply(_with_state, (STATE_TREES[0], 3), stateful=True, jit=False),
    ),
    "apply_with_params_and_state_swapped": case(
        errors.VariableMissingError,
        V,
        ("bn/w", "it is in state", "apply(params, state"),
        in_apply(_with_state, STATE_TREES[::-1], stateful=True),
    ),
    "apply_with_a_python_float_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "float", "arrays at every leaf"),
        in_apply(_vector, {"dense": {"w": 1.0}}, jnp.ones(2), jit=False),
    ),
    "apply_with_a_list_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "list", "arrays at every leaf"),
        in_apply(_vector, {"dense": {"w": [0.0, 0.0]}}, jnp.ones(2), jit=False),
    ),
    "apply_with_abstract_params_from_eval_shape": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "ShapeDtypeStruct", "Fix"),
        in_apply(
            _vector,
            {"dense": {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}},
            jnp.ones(2),
            jit=False,
        ),
    ),
    "apply_with_a_none_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "NoneType", "arrays at every leaf"),
        in_apply(_vector, {"dense": {"w": None}}, jnp.ones(2), jit=False),
    ),
    "apply_with_non_string_keys": case(
        errors.ScopeError,
        V,
        ("dense/w", "Fix"),
        in_apply(_vector, {"dense": {0: jnp.zeros(2)}}, jnp.ones(2), jit=False),
    ),
    # Initializers.
    "initializer_returning_the_wrong_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "returned shape (3,)", "shape (2,)", "init(key, shape, dtype)"),
        in_init(_initializer(lambda key, shape, dtype: jnp.zeros((3,), dtype))),
    ),
    "initializer_returning_the_wrong_dtype": case(
        errors.InitializerError,
        V,
        ("enc/w", "dtype int32", "dtype float32", "init(key, shape, dtype)"),
        in_init(_initializer(lambda key, shape, dtype: jnp.zeros(shape, jnp.int32))),
    ),
    "initializer_returning_a_python_list": case(
        errors.InitializerError,
        V,
        ("enc/w", "list", "init(key, shape, dtype)"),
        in_init(_initializer(lambda key, shape, dtype: [0.0, 0.0])),
    ),
    "initializer_factory_passed_without_calling_it": case(
        errors.InitializerError,
        V,
        ("enc/w", "glorot_uniform()", "Fix"),
        in_init(_initializer(js.initializers.glorot_uniform)),
    ),
    "concrete_initializer_disagreeing_with_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "has shape (2,)", "shape (3,) was given", "omit shape"),
        *in_both(_initializer(jnp.zeros(2), shape=(3,)), {"enc": {"w": jnp.zeros(3)}}),
    ),
    "concrete_list_initializer_disagreeing_with_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "(2,)", "(3,)", "omit shape"),
        in_init(_initializer([1.0, 2.0], shape=(3,))),
    ),
    "concrete_initializer_of_a_type_that_is_not_an_array": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "cannot be made an array", "Fix"),
        in_init(_gv("w", initializer={})),
    ),
    "shape_holding_a_value_traced_by_jit": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "traced", "static_argnums"),
        lambda: jax.jit(js.transform(lambda n: _gv("w", [2, n])()).init)(0, 3),
    ),
    "initializer_refusing_the_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "orthogonal", "two dims", "Fix"),
        in_init(_gv("w", [3], initializer=js.initializers.orthogonal())),
    ),
    "ragged_concrete_initializer": case(
        errors.InitializerError,
        V,
        ("enc/w", "Fix"),
        in_init(_gv("w", initializer=[[1.0], [1.0, 2.0]])),
    ),
    "missing_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "has no shape", "shape=", "concrete initializer"),
        *in_both(_gv("w"), ENC_W),
    ),
    "missing_shape_with_a_callable_initializer": case(
        errors.InitializerError,
        V,
        ("enc/w", "has no shape", "shape="),
        in_init(_gv("w", initializer=js.initializers.zeros)),
    ),
    "shape_that_is_not_a_sequence_of_ints": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "shape", "'ab'"),
        in_init(_gv("w", "ab")),
    ),
    "shape_with_a_fractional_dimension": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "2.5"),
        in_init(_gv("w", [2.5])),
    ),
    "shape_with_a_negative_dimension": case(
        errors.InitializerError,
        V,
        ("enc/w", "-1"),
        in_init(_gv("w", [-1])),
    ),
    "dtype_that_is_not_a_dtype": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "'floaty'"),
        in_init(_gv("w", [2], dtype="floaty")),
    ),
    # Invalid names.
    "variable_name_with_a_colon": case(
        errors.InvalidNameError,
        V,
        ("enc/w:0", "contains ':'", "Fix"),
        *in_both(_gv("w:0", [1]), {}),
    ),
    **{
        f"variable_name_{label}": case(
            errors.InvalidNameError,
            V,
            (f"name {name!r}", problem, "Fix"),
            in_init(_gv(name, [1])),
        )
        for label, name, problem in [
            ("empty", "", "is empty"),
            ("with_a_leading_slash", "/w", "starts or ends with '/'"),
            ("with_a_trailing_slash", "w/", "starts or ends with '/'"),
            ("with_an_empty_component", "a//w", "empty component"),
        ]
    },
    "variable_name_that_is_not_a_str": case(
        errors.ArgumentTypeError,
        TypeError,
        ("must be a str", "int", "Fix"),
        in_init(_gv(3, [1])),
    ),
    **{
        f"scope_name_{label}": case(
            errors.InvalidNameError,
            V,
            (f"scope name {name!r}", "Fix"),
            in_init(_scoped(name)),
        )
        for label, name in [("with_a_colon", "enc:0"), ("empty", ""), ("trailing_slash", "enc/")]
    },
    "default_name_with_an_empty_component": case(
        errors.InvalidNameError,
        V,
        ("scope name 'a//b'", "Fix"),
        in_init(_scoped(None, default_name="a//b")),
    ),
    "name_scope_name_with_a_colon": case(
        errors.InvalidNameError,
        V,
        ("'ops:0'", "Fix"),
        in_init(lambda: js.name_scope("ops:0")),
    ),
    "assign_to_an_invalid_name": case(
        errors.InvalidNameError,
        V,
        ("'c:0'", "Fix"),
        in_init(
            _assigns(
                lambda: js.get_variable("c", [2], trainable=False), lambda: jnp.ones(2), "c:0"
            ),
            stateful=True,
        ),
    ),
    # Leaf/subtree conflicts, in both orders.
    "variable_then_a_variable_below_it": case(
        errors.NameConflictError,
        V,
        ("enc/x/y", "enc/x is already a variable", "rename one"),
        *in_both(
            _in(_scope("enc"), lambda: (js.get_variable("x", [1]), js.get_variable("x/y", [1]))),
            {"enc": {"x": jnp.zeros(1)}},
        ),
    ),
    "variable_below_then_the_variable_above": case(
        errors.NameConflictError,
        V,
        ("enc/x", "already a scope holding variables (enc/x/y)", "rename one"),
        *in_both(
            _in(_scope("enc"), lambda: (js.get_variable("x/y", [1]), js.get_variable("x", [1]))),
            {"enc": {"x": {"y": jnp.zeros(1)}}},
        ),
    ),
    "variable_then_a_scope_of_the_same_name_holding_a_variable": case(
        errors.NameConflictError,
        V,
        ("enc/x/y", "enc/x", "rename one"),
        in_init(
            _twice(
                _in(_scope("enc"), lambda: js.get_variable("x", [1])),
                _in(_scope("enc/x"), lambda: js.get_variable("y", [1])),
            )
        ),
    ),
    "auto_reuse_of_a_name_that_is_a_scope": case(
        errors.NameConflictError,
        V,
        ("enc/x", "enc/x/y", "rename one"),
        in_init(
            _in(
                _scope("enc", reuse=js.AUTO_REUSE),
                lambda: (js.get_variable("x/y", [1]), js.get_variable("x", [1])),
            )
        ),
    ),
    # Calls outside a transform.
    "get_variable_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.get_variable", "enc/w", "js.transform(model)"),
        lambda: js.get_variable("enc/w", [1]),
    ),
    "variable_scope_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.variable_scope", "js.transform(model)"),
        lambda: js.variable_scope("enc").__enter__(),
    ),
    "get_variable_scope_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.get_variable_scope", "js.transform(model)"),
        js.get_variable_scope,
    ),
    "assign_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.assign", "bn/count", "js.transform(model)"),
        lambda: js.assign("bn/count", 1),
    ),
    "next_rng_key_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.next_rng_key", "js.transform(model)"),
        js.next_rng_key,
    ),
    "regularization_loss_outside_a_transform": case(
        errors.NoTransformError,
        R,
        ("js.get_regularization_losses", "js.transform(model)"),
        js.get_regularization_loss,
    ),
    # Scope objects used after their call ended.
    "stale_scope_get_variable_outside_any_call": case(
        errors.StaleScopeError,
        R,
        ("'enc'", "capture the scope inside the model function"),
        lambda: _captured_scope().get_variable("w", [1]),
    ),
    "stale_scope_get_variable_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("'enc'", "capture the scope inside the model function"),
        _stale_get_variable,
    ),
    "stale_scope_reentered_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("'enc'", "capture the scope inside the model function"),
        _reenter_stale,
    ),
    "stale_root_scope_reentered_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("VariableScope ''", "capture the scope inside the model function"),
        _stale_root_scope,
    ),
    "stale_scope_reentered_outside_any_call": case(
        errors.NoTransformError,
        R,
        ("js.variable_scope", "js.transform(model)"),
        lambda: js.variable_scope(_captured_scope()).__enter__(),
    ),
    "outer_calls_scope_used_in_a_nested_call": case(
        errors.StaleScopeError,
        R,
        ("'outer'", "Fix"),
        _outer_scope_in_nested_call,
    ),
    # Scope nesting.
    "variable_scopes_exited_out_of_order": case(
        errors.ScopeNestingError,
        R,
        ("js.variable_scope('outer')", "out of order", "`with` blocks"),
        *in_both(_exit_out_of_order(lambda: js.variable_scope("inner")), {}),
    ),
    "variable_scope_exited_before_a_name_scope_inside_it": case(
        errors.ScopeNestingError,
        R,
        ("js.variable_scope('outer')", "out of order", "`with` blocks"),
        *in_both(_exit_out_of_order(lambda: js.name_scope("ops")), {}),
    ),
    "variable_scope_left_open": case(
        errors.ScopeNestingError,
        R,
        ("never exited", "`with` blocks", "enc"),
        *in_both(_leave_open(lambda: js.variable_scope("enc").__enter__()), ENC_W1),
    ),
    "name_scope_left_open": case(
        errors.ScopeNestingError,
        R,
        ("never exited", "`with` blocks", "ops"),
        *in_both(_leave_open(lambda: js.name_scope("ops").__enter__()), {"w": jnp.zeros(1)}),
    ),
    # assign.
    "assign_to_a_trainable_variable": case(
        errors.AssignError,
        V,
        ("bn/w", "trainable", "trainable=False", "js.transform_with_state"),
        in_init(
            _assigns(lambda: js.get_variable("w", [2]), lambda: jnp.ones(2), "w"), stateful=True
        ),
    ),
    "assign_to_a_missing_variable": case(
        errors.AssignError,
        V,
        ("bn/c", "not been obtained", "js.get_variable(..., trainable=False)"),
        in_init(_assigns(lambda: None, lambda: jnp.ones(2)), stateful=True),
    ),
    "assign_of_the_wrong_shape": case(
        errors.AssignError,
        V,
        ("bn/c", "shape (2,)", "shape (3,)", "reshape or cast"),
        in_init(
            _assigns(lambda: js.get_variable("c", [2], trainable=False), lambda: jnp.ones(3)),
            stateful=True,
        ),
    ),
    "assign_of_the_wrong_dtype": case(
        errors.AssignError,
        V,
        ("bn/c", "dtype float32", "dtype int32", "astype"),
        in_init(
            _assigns(
                lambda: js.get_variable("c", [2], trainable=False),
                lambda: jnp.ones(2, jnp.int32),
            ),
            stateful=True,
        ),
    ),
    "assign_of_a_fractional_python_float_to_an_int_variable": case(
        errors.AssignError,
        V,
        ("bn/c", "int32", "Fix"),
        in_init(
            _assigns(lambda: js.get_variable("c", [], jnp.int32, trainable=False), lambda: 1.5),
            stateful=True,
        ),
    ),
    "assign_in_a_while_loop_condition": case(
        errors.LiftError,
        R,
        ("bn/n", "cond_fun", "Fix: assign in body_fun"),
        *in_both(
            _assign_in_while_condition, ({}, {"bn": {"n": jnp.zeros(())}}), 0.0, stateful=True
        ),
    ),
    "assign_in_vmap_of_a_per_example_value": case(
        errors.LiftError,
        R,
        ("bn/n", "js.vmap", "pmean"),
        *in_both(
            _assign_per_example_in_vmap,
            ({}, {"bn": {"n": jnp.zeros(())}}),
            jnp.ones(3),
            stateful=True,
        ),
    ),
    # rng.
    "next_rng_key_without_an_rng": case(
        errors.MissingRNGError,
        V,
        ("scope 'drop'", "rng=jax.random.key"),
        in_apply(_dropout, {}),
        lambda: js.transform(_dropout).init(None),
    ),
    "init_without_an_rng_for_a_random_initializer": case(
        errors.MissingRNGError,
        V,
        ("dense/w", "f.init(jax.random.key(0)"),
        lambda: js.transform(_vector).init(None, jnp.ones(2)),
    ),
    "rng_that_is_not_a_key": case(
        errors.ArgumentTypeError,
        TypeError,
        ("rng", "str", "jax.random.key(0)"),
        lambda: js.transform(_vector).init("seed", jnp.ones(2)),
    ),
    "rng_that_is_a_batch_of_keys": case(
        errors.ArgumentTypeError,
        TypeError,
        ("rng", "(2,)", "jax.random.key(0)"),
        lambda: js.transform(_vector).init(jax.random.split(jax.random.key(0)), jnp.ones(2)),
    ),
    # Variables created inside raw JAX transforms.
    **{
        f"variable_created_inside_raw_{name}": case(
            errors.RawTransformError,
            R,
            ("rnn/cell/w", "raw JAX transform", _RAW_FIX[name]),
            *in_both(model, {"rnn": {"cell": {"w": jnp.ones(())}}}, 1.0),
        )
        for name, model in _RAW.items()
    },
    "assign_inside_a_raw_scan": case(
        errors.RawTransformError,
        R,
        ("js.assign('bn/n')", "raw JAX transform", "assign it after it"),
        *in_both(
            _assign_in_raw_scan, ({}, {"bn": {"n": jnp.zeros(())}}), jnp.ones(3), stateful=True
        ),
    ),
    # State in a stateless transform.
    "trainable_false_under_transform": case(
        errors.StateInStatelessTransformError,
        R,
        ("bn/moving_mean", "trainable=False", "js.transform_with_state"),
        *in_both(
            _in(_scope("bn"), lambda: js.get_variable("moving_mean", [2], trainable=False)),
            {"bn": {"moving_mean": jnp.zeros(2)}},
        ),
    ),
    "model_function_that_is_a_generator": case(
        errors.ArgumentTypeError,
        TypeError,
        ("'_generator_model'", "generator", "Fix"),
        lambda: js.transform(_generator_model),
    ),
    # Lifted transforms.
    "layer_stack_of_zero_layers": case(
        errors.ArgumentError,
        V,
        ("js.layer_stack", "0", "Fix"),
        lambda: js.layer_stack(0),
    ),
    "layer_stack_nested_inside_a_layer_stack": case(
        errors.LiftError,
        R,
        ("js.layer_stack cannot be nested inside another js.layer_stack", "Fix"),
        *in_both(_stack_in_stack, {"w": jnp.ones((2, 1))}, jnp.ones(1)),
    ),
    "layer_body_that_changes_its_carry": case(
        errors.LayerBodyError,
        TypeError,
        ("js.layer_stack(2)", "float32[1]", "float32[2]", "Fix"),
        *in_both(_growing_layer, {}, jnp.ones(1)),
    ),
    "scan_without_xs_or_length": case(
        errors.ArgumentError,
        V,
        ("js.scan", "length=", "Fix"),
        in_init(lambda: js.scan(lambda c, x: (c, None), 0.0, None)),
    ),
    # Shardings.
    "sharding_naming_an_axis_not_in_the_mesh": case(
        errors.ShardingError,
        V,
        ("enc/w", "'model'", "('data',)", "use one of those axes"),
        _with_mesh(_gv("w", [4, 2], sharding=P("model", None))),
    ),
    "sharding_with_more_entries_than_dims": case(
        errors.ShardingError,
        V,
        ("enc/w", "shape (4,)", "2 entries", "at most one entry per dim"),
        *in_both(_gv("w", [4], sharding=P("data", None)), {"enc": {"w": jnp.zeros(4)}}),
    ),
    "sharding_that_is_not_a_partition_spec": case(
        errors.ShardingError,
        V,
        ("enc/w", "str", "PartitionSpec("),
        in_init(_gv("w", [4], sharding="data")),
    ),
    "partitioner_returning_an_axis_not_in_the_mesh": case(
        errors.ShardingError,
        V,
        ("enc/w", "'model'", "use one of those axes"),
        _with_mesh(_scoped("enc", partitioner=lambda name, shape, dtype: P("model"))),
    ),
    # The Flax bridges given the other Flax API's module.
    "nnx_module_given_to_flax_module": case(
        errors.FlaxModuleTypeError,
        TypeError,
        ("js.flax_module", "Linear", "flax.nnx.Module", "js.nnx_module(module)"),
        lambda: js.flax_module(nnx.Linear(3, 2, rngs=nnx.Rngs(0))),
    ),
    "linen_module_given_to_nnx_module": case(
        errors.FlaxModuleTypeError,
        TypeError,
        ("js.nnx_module", "Dense", "flax.linen.Module", "js.flax_module(module)"),
        lambda: js.nnx_module(linen.Dense(2)),
    ),
    # Selecting variables for an optimizer (js.select, js.labels, js.merge).
    "select_of_a_misspelled_scope": case(
        errors.SelectionError,
        V,
        ("'dense_1'", "dense", "js.flatten(tree)"),
        lambda: js.select(DENSE, "dense_1"),
        lambda: js.labels(DENSE, {"dense_1": "train"}, default="frozen"),
    ),
    "labels_leaving_a_variable_without_a_label": case(
        errors.SelectionError,
        V,
        ("dense/kernel", "default="),
        lambda: js.labels({**DENSE, "out": {"w": jnp.ones(1)}}, {"out": "train"}),
    ),
    "merge_of_trees_holding_the_same_variable": case(
        errors.MergeConflictError,
        V,
        ("dense/kernel", "both hold", "js.partition"),
        lambda: js.merge(DENSE, {"dense": {"kernel": jnp.ones((3, 2))}}),
    ),
    # Templates (js.make_template).
    "template_later_call_asking_for_a_new_variable": case(
        errors.TemplateVariableError,
        V,
        ("tmpl/b", "first call", "js.make_template"),
        lambda: js.transform(lambda: [_SCALE_TEMPLATE(1.0, name=n) for n in ("a", "b")]).init(0),
    ),
}

_TYPE_PARAMS = [
    pytest.param(
        name,
        id=name,
        marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [],
    )
    for name, c in CATALOGUE.items()
]
_MESSAGE_PARAMS = [
    pytest.param(
        name,
        id=name,
        marks=[pytest.mark.xfail(strict=True, reason=c.bug or c.message_bug)]
        if c.bug or c.message_bug
        else [],
    )
    for name, c in CATALOGUE.items()
]


def _raise_all(misuse: Misuse) -> list[Exception]:
    """Runs every trigger; each must raise ``misuse.error``."""
    raised = []
    for trigger in misuse.triggers:
        with pytest.raises(misuse.error) as info:
            trigger()
        raised.append(info.value)
    return raised


def test_the_catalogue_holds_at_least_forty_distinct_bad_inputs():
    assert len(CATALOGUE) >= 40


def test_the_catalogue_covers_every_error_type():
    covered = {c.error for c in CATALOGUE.values() if not c.bug}
    every = {getattr(errors, name) for name in errors.__all__} - {errors.ScopeError}
    # The loaders' errors have their own catalogues: tests/test_checkpoint*.py,
    # tests/test_tf1_checkpoint.py and tests/test_from_haiku.py.
    every -= {e for e in every if e.__name__.startswith(("Checkpoint", "TF1", "Haiku"))}
    assert every <= covered


@pytest.mark.parametrize("name", _TYPE_PARAMS)
def test_misuse_raises_its_error_type_and_builtin_base(name):
    misuse = CATALOGUE[name]
    for error in _raise_all(misuse):
        assert isinstance(error, misuse.base) and isinstance(error, errors.ScopeError)


@pytest.mark.parametrize("name", _MESSAGE_PARAMS)
def test_misuse_message_names_the_path_and_the_fix(name):
    misuse = CATALOGUE[name]
    for error in _raise_all(misuse):
        message = str(error)
        missing = [word for word in misuse.words if word not in message]
        assert not missing, f"{missing} not in: {message}"


# --- Bugs outside the catalogue ----------------------------------------------------


def test_next_rng_key_first_drawn_inside_a_raw_scan_does_not_leak_a_tracer():
    def model(xs):
        def step(carry, x):
            return carry + jax.random.normal(js.next_rng_key()), None

        carry, _ = jax.lax.scan(step, 0.0, xs)
        return carry + jax.random.normal(js.next_rng_key())

    out = js.transform(model).apply({}, jnp.ones(3), rng=0)
    assert out.shape == ()


# --- Shardings that the mesh does not divide (needs several devices) ------------------

_SHARDING_PROBE = textwrap.dedent(
    """
    import json
    import jax
    from jax.sharding import PartitionSpec as P
    import jaxscope as js

    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [6, 2], sharding=P("data", None))

    result = {"devices": jax.device_count()}
    with jax.set_mesh(jax.make_mesh((4,), ("data",), devices=jax.devices()[:4])):
        try:
            js.transform(model).init(0)
        except Exception as error:
            result.update(
                type=type(error).__name__,
                scope_error=isinstance(error, js.errors.ScopeError),
                value_error=isinstance(error, ValueError),
                message=str(error),
            )
    print(json.dumps(result))
    """
)


def test_sharding_that_the_mesh_axis_does_not_divide_raises_sharding_error():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", _SHARDING_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8
    assert result["type"] == "ShardingError"
    assert result["scope_error"] and result["value_error"]
    for word in ("enc/w", "size 6", "('data',)", "size 4", "replicate that dim"):
        assert word in result["message"]


# --- A call that fails leaves nothing behind ---------------------------------------


def _raises_midway(boom: bool):
    with js.variable_scope("outer"):
        with js.name_scope("ops"):
            with js.variable_scope(None, default_name="layer") as scope:
                js.get_variable("w", [2])
                if boom:
                    raise KeyError("boom")
    return scope.name


def _name_stack_after(failing_call, error):
    """The op-name stack of an op traced right after ``failing_call`` raised
    ``error`` in the same trace."""

    def traced(x):
        with pytest.raises(error):
            failing_call()
        return jnp.sin(x)

    (sin,) = [e for e in jax.make_jaxpr(traced)(1.0).eqns if e.primitive.name == "sin"]
    return str(sin.source_info.name_stack)


def test_an_exception_from_fn_reaches_the_caller_unchanged():
    with pytest.raises(KeyError, match="boom"):
        js.transform(_raises_midway).init(0, True)


def test_the_call_after_a_raise_can_create_the_same_names_again():
    f = js.transform(_raises_midway)
    with pytest.raises(KeyError):
        f.init(0, True)
    assert js.flatten(f.init(0, False)).keys() == {"outer/layer/w"}


def test_the_call_after_a_raise_numbers_default_names_afresh():
    f = js.transform(_raises_midway)
    outputs = []
    g = js.transform(lambda: outputs.append(_raises_midway(False)))
    with pytest.raises(KeyError):
        f.init(0, True)
    g.init(0)
    assert outputs == ["outer/layer"]


def test_no_call_is_active_after_a_raise():
    with pytest.raises(KeyError):
        js.transform(_raises_midway).init(0, True)
    with pytest.raises(errors.NoTransformError):
        js.get_variable_scope()


def test_no_op_name_scope_is_left_open_after_a_raise():
    f = js.transform(_raises_midway)
    tree = {"outer": {"layer": {"w": jnp.ones(2)}}}
    assert _name_stack_after(lambda: f.apply(tree, True), KeyError) == ""


def test_no_op_name_scope_is_left_open_after_scopes_left_open():
    f = js.transform(_leave_open(lambda: js.name_scope("ops").__enter__()))
    assert _name_stack_after(lambda: f.init(0), errors.ScopeNestingError) == ""


def test_no_op_name_scope_is_left_open_after_a_scope_error_inside_nested_scopes():
    def model():
        with js.variable_scope("outer"), js.name_scope("ops"), js.variable_scope("inner"):
            js.get_variable("w", [1])
            js.get_variable("w", [1])

    f = js.transform(model)
    assert _name_stack_after(lambda: f.init(0), errors.VariableExistsError) == ""


def test_the_call_after_a_raise_inside_a_lifted_body_works():
    def model(xs, boom):
        def step(carry, x):
            w = js.get_variable("w", [])
            if boom:
                raise KeyError("boom")
            return carry * w, None

        with js.variable_scope("rnn"):
            return js.scan(step, 1.0, xs)[0]

    f = js.transform(model)
    with pytest.raises(KeyError):
        f.init(0, jnp.ones(3), True)
    params = f.init(0, jnp.ones(3), False)
    assert js.flatten(params).keys() == {"rnn/w"}
    with pytest.raises(errors.NoTransformError):
        js.get_variable_scope()


def test_the_call_after_a_raw_transform_error_is_jittable():
    f = js.transform(_RAW["scan"])
    with pytest.raises(errors.RawTransformError):
        f.init(0, 1.0)
    params = {"rnn": {"cell": {"w": jnp.full((), 2.0)}}}
    good = js.transform(lambda x: x * js.get_variable("rnn/cell/w", []))
    assert float(jax.jit(good.apply)(params, 3.0)) == 6.0


# --- A failed call leaves the caller's trees untouched --------------------------------


def _snapshot(tree):
    """Every dict of ``tree`` by path, with its items (leaves by identity)."""
    nodes = {}

    def walk(node, path):
        nodes[path] = (id(node), list(node.items()))
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{path}/{key}")

    walk(tree, "")
    return nodes


def assert_untouched(tree, snapshot):
    now = _snapshot(tree)
    assert now.keys() == snapshot.keys()
    for path, (node_id, items) in snapshot.items():
        now_id, now_items = now[path]
        assert now_id == node_id
        assert len(now_items) == len(items)
        for (key, value), (now_key, now_value) in zip(items, now_items, strict=True):
            assert key == now_key and value is now_value


def _fresh_params():
    return {
        "dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
        "head": {"w": jnp.ones(2)},
    }


def _reads_then_fails(error):
    def model(x):
        _dense(x)
        with js.variable_scope("head"):
            js.get_variable("w", [2])
        raise error

    return model


@pytest.mark.parametrize(
    "model, check_unused",
    [
        pytest.param(_reads_then_fails(KeyError("boom")), False, id="fn_raises"),
        pytest.param(
            _twice(lambda: _dense(X), _in(_scope("head"), lambda: js.get_variable("w", [3]))),
            False,
            id="shape_mismatch",
        ),
        pytest.param(
            _twice(lambda: _dense(X), _in(_scope("head"), lambda: js.get_variable("v", [2]))),
            False,
            id="missing_variable",
        ),
        pytest.param(lambda x: _dense(x), True, id="unused_variable"),
    ],
)
def test_a_failed_apply_leaves_the_params_tree_untouched(model, check_unused):
    params = _fresh_params()
    snapshot = _snapshot(params)
    with pytest.raises(Exception):  # noqa: B017 - the kinds are the parameters
        js.transform(model, check_unused=check_unused).apply(params, X)
    assert_untouched(params, snapshot)


def test_a_failed_apply_after_an_assign_leaves_the_state_tree_untouched():
    def model():
        with js.variable_scope("bn"):
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)
        raise KeyError("boom")

    params, state = {}, {"bn": {"count": jnp.zeros((), jnp.int32)}}
    params_snapshot, state_snapshot = _snapshot(params), _snapshot(state)
    with pytest.raises(KeyError):
        js.transform_with_state(model).apply(params, state)
    assert_untouched(params, params_snapshot)
    assert_untouched(state, state_snapshot)
    assert int(state["bn"]["count"]) == 0


def test_a_successful_apply_returns_new_state_without_mutating_the_given_one():
    def model():
        with js.variable_scope("bn"):
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)

    state = {"bn": {"count": jnp.zeros((), jnp.int32)}, "other": {"x": jnp.ones(1)}}
    snapshot = _snapshot(state)
    _, new_state = js.transform_with_state(model).apply({}, state)
    assert_untouched(state, snapshot)
    assert int(new_state["bn"]["count"]) == 1
    assert new_state["other"]["x"] is state["other"]["x"]


def test_a_failed_init_leaves_the_callers_inputs_untouched():
    inputs = {"x": jnp.ones((1, 3)), "nested": {"y": np.zeros(2)}}
    snapshot = _snapshot(inputs)

    def model(inputs):
        _dense(inputs["x"])
        js.get_variable("dense/kernel", [3, 2])  # created twice

    with pytest.raises(errors.VariableExistsError):
        js.transform(model).init(0, inputs)
    assert_untouched(inputs, snapshot)


def test_the_error_docs_have_a_section_with_an_example_for_every_error_type():
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    with open(os.path.join(docs, "errors.md"), encoding="utf-8") as file:
        text = file.read()
    for name in errors.__all__:
        assert f"| `{name}` |" in text
        if name != "ScopeError":
            assert f"### {name}\n" in text
            assert f"\n{name}: " in text  # an example message
