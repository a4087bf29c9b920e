"""Misused state, rng and transforms: ``js.assign``, ``js.next_rng_key``
without an rng, variables created inside raw JAX transforms, state in a
stateless transform, and the lifted transforms' limits.

The entries run through the two tests of :func:`tests.misuse.catalogue_tests`:
the error's type and built-in base, and the path and the fix in its message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxscope as js
from jaxscope import errors

from .misuse import (
    RAW,
    RAW_FIX,
    Misuse,
    R,
    V,
    assign_in_raw_scan,
    assign_in_while_condition,
    assign_per_example_in_vmap,
    assigns,
    case,
    catalogue_tests,
    dropout,
    generator_model,
    growing_layer,
    in_apply,
    in_both,
    in_init,
    in_scope,
    scope_of,
    stack_in_stack,
    vector,
)

CATALOGUE: dict[str, Misuse] = {
    # assign.
    "assign_to_a_trainable_variable": case(
        errors.AssignError,
        V,
        ("bn/w", "trainable", "trainable=False", "js.transform_with_state"),
        in_init(
            assigns(lambda: js.get_variable("w", [2]), lambda: jnp.ones(2), "w"), stateful=True
        ),
    ),
    "assign_to_a_missing_variable": case(
        errors.AssignError,
        V,
        ("bn/c", "not been obtained", "js.get_variable(..., trainable=False)"),
        in_init(assigns(lambda: None, lambda: jnp.ones(2)), stateful=True),
    ),
    "assign_of_the_wrong_shape": case(
        errors.AssignError,
        V,
        ("bn/c", "shape (2,)", "shape (3,)", "reshape or cast"),
        in_init(
            assigns(lambda: js.get_variable("c", [2], trainable=False), lambda: jnp.ones(3)),
            stateful=True,
        ),
    ),
    "assign_of_the_wrong_dtype": case(
        errors.AssignError,
        V,
        ("bn/c", "dtype float32", "dtype int32", "astype"),
        in_init(
            assigns(
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
            assigns(lambda: js.get_variable("c", [], jnp.int32, trainable=False), lambda: 1.5),
            stateful=True,
        ),
    ),
    "assign_in_a_while_loop_condition": case(
        errors.LiftError,
        R,
        ("bn/n", "cond_fun", "Fix: assign in body_fun"),
        *in_both(assign_in_while_condition, ({}, {"bn": {"n": jnp.zeros(())}}), 0.0, stateful=True),
    ),
    "assign_in_vmap_of_a_per_example_value": case(
        errors.LiftError,
        R,
        ("bn/n", "js.vmap", "pmean"),
        *in_both(
            assign_per_example_in_vmap,
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
        in_apply(dropout, {}),
        lambda: js.transform(dropout).init(None),
    ),
    "init_without_an_rng_for_a_random_initializer": case(
        errors.MissingRNGError,
        V,
        ("dense/w", "f.init(jax.random.key(0)"),
        lambda: js.transform(vector).init(None, jnp.ones(2)),
    ),
    "rng_that_is_not_a_key": case(
        errors.ArgumentTypeError,
        TypeError,
        ("rng", "str", "jax.random.key(0)"),
        lambda: js.transform(vector).init("seed", jnp.ones(2)),
    ),
    "rng_that_is_a_batch_of_keys": case(
        errors.ArgumentTypeError,
        TypeError,
        ("rng", "(2,)", "jax.random.key(0)"),
        lambda: js.transform(vector).init(jax.random.split(jax.random.key(0)), jnp.ones(2)),
    ),
    # Variables created inside raw JAX transforms.
    **{
        f"variable_created_inside_raw_{name}": case(
            errors.RawTransformError,
            R,
            ("rnn/cell/w", "raw JAX transform", RAW_FIX[name]),
            *in_both(model, {"rnn": {"cell": {"w": jnp.ones(())}}}, 1.0),
        )
        for name, model in RAW.items()
    },
    "assign_inside_a_raw_scan": case(
        errors.RawTransformError,
        R,
        ("js.assign('bn/n')", "raw JAX transform", "assign it after it"),
        *in_both(
            assign_in_raw_scan, ({}, {"bn": {"n": jnp.zeros(())}}), jnp.ones(3), stateful=True
        ),
    ),
    # State in a stateless transform.
    "trainable_false_under_transform": case(
        errors.StateInStatelessTransformError,
        R,
        ("bn/moving_mean", "trainable=False", "js.transform_with_state"),
        *in_both(
            in_scope(scope_of("bn"), lambda: js.get_variable("moving_mean", [2], trainable=False)),
            {"bn": {"moving_mean": jnp.zeros(2)}},
        ),
    ),
    "model_function_that_is_a_generator": case(
        errors.ArgumentTypeError,
        TypeError,
        ("'generator_model'", "generator", "Fix"),
        lambda: js.transform(generator_model),
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
        *in_both(stack_in_stack, {"w": jnp.ones((2, 1))}, jnp.ones(1)),
    ),
    "layer_body_that_changes_its_carry": case(
        errors.LayerBodyError,
        TypeError,
        ("js.layer_stack(2)", "float32[1]", "float32[2]", "Fix"),
        *in_both(growing_layer, {}, jnp.ones(1)),
    ),
    "scan_without_xs_or_length": case(
        errors.ArgumentError,
        V,
        ("js.scan", "length=", "Fix"),
        in_init(lambda: js.scan(lambda c, x: (c, None), 0.0, None)),
    ),
}


(
    test_misuse_raises_its_error_type_and_builtin_base,
    test_misuse_message_names_the_path_and_the_fix,
) = catalogue_tests(CATALOGUE)
