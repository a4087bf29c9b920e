"""Misuses of reuse and of the tree given to ``apply``: wrong reuse in every
direction, shape and dtype mismatches, missing or extra variables, params of
the wrong structure.

The entries run through the two tests of :func:`tests.misuse.catalogue_tests`:
the error's type and built-in base, and the path and the fix in its message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxscope as js
from jaxscope import errors

from .misuse import (
    DENSE,
    ENC_W,
    FIX_REUSE,
    STATE_TREES,
    Misuse,
    V,
    X,
    captured_reusing_scope,
    case,
    catalogue_tests,
    created_then_reused,
    dense_layer,
    gv,
    in_apply,
    in_both,
    in_init,
    in_scope,
    run_twice,
    scope_of,
    scoped,
    vector,
    with_state,
)

CATALOGUE: dict[str, Misuse] = {
    # Wrong reuse, in every direction.
    "create_twice": case(
        errors.VariableExistsError,
        V,
        ("enc/w", "already exists", "created at", *FIX_REUSE),
        *in_both(created_then_reused({}, shape=[2]), ENC_W),
    ),
    "create_after_an_auto_reuse_creation": case(
        errors.VariableExistsError,
        V,
        ("enc/w", "already exists", *FIX_REUSE),
        *in_both(
            run_twice(
                in_scope(scope_of("enc", reuse=js.AUTO_REUSE), lambda: js.get_variable("w", [2])),
                in_scope(scope_of("enc"), lambda: js.get_variable("w", [2])),
            ),
            ENC_W,
        ),
    ),
    "reuse_before_creation": case(
        errors.VariableMissingError,
        V,
        ("enc/w", "does not exist", "reuse=None", "js.AUTO_REUSE"),
        in_init(scoped("enc", reuse=True)),
    ),
    "reuse_missing_from_the_tree_given_to_apply": case(
        errors.VariableMissingError,
        V,
        ("enc/w", "enc/v", "Fix"),
        in_apply(scoped("enc", reuse=True), {"enc": {"v": jnp.zeros(1)}}),
    ),
    "reuse_false_cannot_turn_reuse_off": case(
        errors.VariableMissingError,
        V,
        ("enc/inner/w", "js.AUTO_REUSE"),
        in_init(in_scope(scope_of("enc", reuse=True), scoped("inner", reuse=False))),
    ),
    "new_name_after_reuse_variables": case(
        errors.VariableMissingError,
        V,
        ("enc/v", "js.AUTO_REUSE"),
        in_init(
            in_scope(
                scope_of("enc"),
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
        in_init(captured_reusing_scope),
    ),
    "reuse_by_name_of_a_default_name_not_yet_numbered": case(
        errors.VariableMissingError,
        V,
        ("layer_1/w", "js.AUTO_REUSE"),
        in_init(
            run_twice(
                in_scope(scope_of(None, default_name="layer"), lambda: js.get_variable("w", [1])),
                scoped("layer_1", reuse=True),
            )
        ),
    ),
    "default_name_with_reuse_true": case(
        errors.ScopeArgumentError,
        V,
        ("default_name='layer'", "reuse=True", "Fix", "captured scope"),
        in_init(scoped(None, default_name="layer", reuse=True)),
    ),
    "default_name_with_auto_reuse": case(
        errors.ScopeArgumentError,
        V,
        ("default_name='layer'", "js.AUTO_REUSE", "Fix"),
        in_init(scoped(None, default_name="layer", reuse=js.AUTO_REUSE)),
    ),
    "scope_without_name_or_default_name": case(
        errors.ArgumentTypeError,
        TypeError,
        ("name_or_scope", "default_name", "Fix"),
        in_init(scoped(None)),
    ),
    "scope_name_of_the_wrong_type": case(
        errors.ArgumentTypeError,
        TypeError,
        ("name_or_scope", "int", "Fix"),
        in_init(scoped(3)),
    ),
    "reuse_flag_that_is_not_true_false_none_or_auto_reuse": case(
        errors.ScopeArgumentError,
        V,
        ("reuse", "js.AUTO_REUSE", "Fix"),
        in_init(scoped("enc", reuse=1)),
    ),
    # Shape and dtype mismatch.
    "shape_mismatch_on_reuse_in_one_call": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "specified shape (3,)", "found shape (2,)", "omit shape"),
        *in_both(created_then_reused({"reuse": True}, shape=[3]), ENC_W),
    ),
    "dtype_mismatch_on_reuse_in_one_call": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "int32", "float32", "omit dtype"),
        *in_both(created_then_reused({"reuse": True}, dtype=jnp.int32), ENC_W),
    ),
    "shape_mismatch_on_auto_reuse": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "(3,)", "(2,)", "omit shape"),
        *in_both(created_then_reused({"reuse": js.AUTO_REUSE}, shape=[3]), ENC_W),
    ),
    "dtype_mismatch_on_auto_reuse": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "bfloat16", "float32"),
        *in_both(created_then_reused({"reuse": js.AUTO_REUSE}, dtype=jnp.bfloat16), ENC_W),
    ),
    "shape_mismatch_with_the_tree_given_to_apply": case(
        errors.ShapeMismatchError,
        V,
        ("dense/w", "specified shape (2,)", "found shape (3,)", "params made for this model"),
        in_apply(vector, {"dense": {"w": jnp.zeros(3)}}, jnp.ones(2)),
    ),
    "dtype_mismatch_with_the_tree_given_to_apply": case(
        errors.DtypeMismatchError,
        V,
        ("dense/w", "int32", "float32", "cast the params tree"),
        in_apply(vector, {"dense": {"w": jnp.zeros(2, jnp.int32)}}, jnp.ones(2)),
    ),
    "dtype_of_a_scope_disagreeing_with_the_tree_given_to_apply": case(
        errors.DtypeMismatchError,
        V,
        ("enc/w", "bfloat16", "float32"),
        in_apply(scoped("enc", dtype=jnp.bfloat16), {"enc": {"w": jnp.zeros(1)}}),
    ),
    "concrete_initializer_disagreeing_with_the_tree_given_to_apply": case(
        errors.ShapeMismatchError,
        V,
        ("enc/w", "(2,)", "(3,)"),
        in_apply(gv("w", initializer=jnp.zeros(2)), {"enc": {"w": jnp.zeros(3)}}),
    ),
    # Apply with a missing, misspelled or extra variable.
    "apply_with_an_empty_tree": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "the tree is empty", "params that init returned"),
        in_apply(dense_layer, {}, X),
    ),
    "apply_with_a_misspelled_variable": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "Nearest names present: dense/kernal", "Fix"),
        in_apply(dense_layer, {"dense": {"kernal": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}, X),
    ),
    "apply_with_a_misspelled_scope": case(
        errors.VariableMissingError,
        V,
        ("dense/kernel", "dense_1/kernel", "check the variable's scope"),
        in_apply(dense_layer, {"dense_1": DENSE["dense"]}, X),
    ),
    "apply_with_an_extra_variable_under_check_unused": case(
        errors.UnusedVariableError,
        V,
        ("dense/extra", "never obtained", "drop them from the tree"),
        in_apply(
            dense_layer, {"dense": {**DENSE["dense"], "extra": jnp.ones(1)}}, X, check_unused=True
        ),
    ),
    "apply_with_an_extra_state_variable_under_check_unused": case(
        errors.UnusedVariableError,
        V,
        ("bn/old_count", "never obtained", "Fix"),
        in_apply(
            with_state,
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
        in_apply(dense_layer, {"dense": jnp.ones((3, 2))}, X),
    ),
    "apply_with_a_subtree_where_a_leaf_belongs": case(
        errors.InvalidParamsError,
        V,
        ("dense/kernel", "sub-tree", "rename the variable"),
        in_apply(
            dense_layer, {"dense": {"kernel": {"w": jnp.ones((3, 2))}, "bias": jnp.zeros(2)}}, X
        ),
    ),
    "apply_with_params_that_are_a_list": case(
        errors.InvalidParamsError,
        V,
        ("params", "list", "Fix"),
        in_apply(dense_layer, [DENSE], X),
    ),
    "apply_with_params_that_are_an_array": case(
        errors.InvalidParamsError,
        V,
        ("params", "Fix"),
        in_apply(dense_layer, jnp.ones((3, 2)), X),
    ),
    "apply_with_state_that_is_not_a_dict": case(
        errors.InvalidParamsError,
        V,
        ("state", "int", "both trees"),
        in_apply(with_state, (STATE_TREES[0], 3), stateful=True, jit=False),
    ),
    "apply_with_params_and_state_swapped": case(
        errors.VariableMissingError,
        V,
        ("bn/w", "it is in state", "apply(params, state"),
        in_apply(with_state, STATE_TREES[::-1], stateful=True),
    ),
    "apply_with_a_python_float_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "float", "arrays at every leaf"),
        in_apply(vector, {"dense": {"w": 1.0}}, jnp.ones(2), jit=False),
    ),
    "apply_with_a_list_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "list", "arrays at every leaf"),
        in_apply(vector, {"dense": {"w": [0.0, 0.0]}}, jnp.ones(2), jit=False),
    ),
    "apply_with_abstract_params_from_eval_shape": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "ShapeDtypeStruct", "Fix"),
        in_apply(
            vector,
            {"dense": {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}},
            jnp.ones(2),
            jit=False,
        ),
    ),
    "apply_with_a_none_leaf": case(
        errors.InvalidParamsError,
        V,
        ("dense/w", "NoneType", "arrays at every leaf"),
        in_apply(vector, {"dense": {"w": None}}, jnp.ones(2), jit=False),
    ),
    "apply_with_non_string_keys": case(
        errors.ScopeError,
        V,
        ("dense/w", "Fix"),
        in_apply(vector, {"dense": {0: jnp.zeros(2)}}, jnp.ones(2), jit=False),
    ),
}


(
    test_misuse_raises_its_error_type_and_builtin_base,
    test_misuse_message_names_the_path_and_the_fix,
) = catalogue_tests(CATALOGUE)
