"""Misused scopes: calls outside a transform, scope objects used after their
call ended, scopes exited out of order.

The entries run through the two tests of :func:`tests.misuse.catalogue_tests`:
the error's type and built-in base, and the path and the fix in its message.
"""

from __future__ import annotations

import jax.numpy as jnp

import jaxscope as js
from jaxscope import errors

from .misuse import (
    ENC_W1,
    Misuse,
    R,
    captured_scope,
    case,
    catalogue_tests,
    exit_out_of_order,
    in_both,
    leave_open,
    outer_scope_in_nested_call,
    reenter_stale,
    stale_get_variable,
    stale_root_scope,
)

CATALOGUE: dict[str, Misuse] = {
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
        lambda: captured_scope().get_variable("w", [1]),
    ),
    "stale_scope_get_variable_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("'enc'", "capture the scope inside the model function"),
        stale_get_variable,
    ),
    "stale_scope_reentered_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("'enc'", "capture the scope inside the model function"),
        reenter_stale,
    ),
    "stale_root_scope_reentered_in_a_later_call": case(
        errors.StaleScopeError,
        R,
        ("VariableScope ''", "capture the scope inside the model function"),
        stale_root_scope,
    ),
    "stale_scope_reentered_outside_any_call": case(
        errors.NoTransformError,
        R,
        ("js.variable_scope", "js.transform(model)"),
        lambda: js.variable_scope(captured_scope()).__enter__(),
    ),
    "outer_calls_scope_used_in_a_nested_call": case(
        errors.StaleScopeError,
        R,
        ("'outer'", "Fix"),
        outer_scope_in_nested_call,
    ),
    # Scope nesting.
    "variable_scopes_exited_out_of_order": case(
        errors.ScopeNestingError,
        R,
        ("js.variable_scope('outer')", "out of order", "`with` blocks"),
        *in_both(exit_out_of_order(lambda: js.variable_scope("inner")), {}),
    ),
    "variable_scope_exited_before_a_name_scope_inside_it": case(
        errors.ScopeNestingError,
        R,
        ("js.variable_scope('outer')", "out of order", "`with` blocks"),
        *in_both(exit_out_of_order(lambda: js.name_scope("ops")), {}),
    ),
    "variable_scope_left_open": case(
        errors.ScopeNestingError,
        R,
        ("never exited", "`with` blocks", "enc"),
        *in_both(leave_open(lambda: js.variable_scope("enc").__enter__()), ENC_W1),
    ),
    "name_scope_left_open": case(
        errors.ScopeNestingError,
        R,
        ("never exited", "`with` blocks", "ops"),
        *in_both(leave_open(lambda: js.name_scope("ops").__enter__()), {"w": jnp.zeros(1)}),
    ),
}


(
    test_misuse_raises_its_error_type_and_builtin_base,
    test_misuse_message_names_the_path_and_the_fix,
) = catalogue_tests(CATALOGUE)
