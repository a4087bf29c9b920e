"""Misused initializers, invalid names, and names that would be both a
variable and a scope.

The entries run through the two tests of :func:`tests.misuse.catalogue_tests`:
the error's type and built-in base, and the path and the fix in its message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxscope as js
from jaxscope import errors

from .misuse import (
    ENC_W,
    Misuse,
    V,
    assigns,
    case,
    catalogue_tests,
    get_with_initializer,
    gv,
    in_both,
    in_init,
    in_scope,
    run_twice,
    scope_of,
    scoped,
)

CATALOGUE: dict[str, Misuse] = {
    # Initializers.
    "initializer_returning_the_wrong_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "returned shape (3,)", "shape (2,)", "init(key, shape, dtype)"),
        in_init(get_with_initializer(lambda key, shape, dtype: jnp.zeros((3,), dtype))),
    ),
    "initializer_returning_the_wrong_dtype": case(
        errors.InitializerError,
        V,
        ("enc/w", "dtype int32", "dtype float32", "init(key, shape, dtype)"),
        in_init(get_with_initializer(lambda key, shape, dtype: jnp.zeros(shape, jnp.int32))),
    ),
    "initializer_returning_a_python_list": case(
        errors.InitializerError,
        V,
        ("enc/w", "list", "init(key, shape, dtype)"),
        in_init(get_with_initializer(lambda key, shape, dtype: [0.0, 0.0])),
    ),
    "initializer_factory_passed_without_calling_it": case(
        errors.InitializerError,
        V,
        ("enc/w", "glorot_uniform()", "Fix"),
        in_init(get_with_initializer(js.initializers.glorot_uniform)),
    ),
    "concrete_initializer_disagreeing_with_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "has shape (2,)", "shape (3,) was given", "omit shape"),
        *in_both(get_with_initializer(jnp.zeros(2), shape=(3,)), {"enc": {"w": jnp.zeros(3)}}),
    ),
    "concrete_list_initializer_disagreeing_with_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "(2,)", "(3,)", "omit shape"),
        in_init(get_with_initializer([1.0, 2.0], shape=(3,))),
    ),
    "concrete_initializer_of_a_type_that_is_not_an_array": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "cannot be made an array", "Fix"),
        in_init(gv("w", initializer={})),
    ),
    "shape_holding_a_value_traced_by_jit": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "traced", "static_argnums"),
        lambda: jax.jit(js.transform(lambda n: gv("w", [2, n])()).init)(0, 3),
    ),
    "initializer_refusing_the_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "orthogonal", "two dims", "Fix"),
        in_init(gv("w", [3], initializer=js.initializers.orthogonal())),
    ),
    "ragged_concrete_initializer": case(
        errors.InitializerError,
        V,
        ("enc/w", "Fix"),
        in_init(gv("w", initializer=[[1.0], [1.0, 2.0]])),
    ),
    "missing_shape": case(
        errors.InitializerError,
        V,
        ("enc/w", "has no shape", "shape=", "concrete initializer"),
        *in_both(gv("w"), ENC_W),
    ),
    "missing_shape_with_a_callable_initializer": case(
        errors.InitializerError,
        V,
        ("enc/w", "has no shape", "shape="),
        in_init(gv("w", initializer=js.initializers.zeros)),
    ),
    "shape_that_is_not_a_sequence_of_ints": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "shape", "'ab'"),
        in_init(gv("w", "ab")),
    ),
    "shape_with_a_fractional_dimension": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "2.5"),
        in_init(gv("w", [2.5])),
    ),
    "shape_with_a_negative_dimension": case(
        errors.InitializerError,
        V,
        ("enc/w", "-1"),
        in_init(gv("w", [-1])),
    ),
    "dtype_that_is_not_a_dtype": case(
        errors.ArgumentTypeError,
        TypeError,
        ("enc/w", "'floaty'"),
        in_init(gv("w", [2], dtype="floaty")),
    ),
    # Invalid names.
    "variable_name_with_a_colon": case(
        errors.InvalidNameError,
        V,
        ("enc/w:0", "contains ':'", "Fix"),
        *in_both(gv("w:0", [1]), {}),
    ),
    **{
        f"variable_name_{label}": case(
            errors.InvalidNameError,
            V,
            (f"name {name!r}", problem, "Fix"),
            in_init(gv(name, [1])),
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
        in_init(gv(3, [1])),
    ),
    **{
        f"scope_name_{label}": case(
            errors.InvalidNameError,
            V,
            (f"scope name {name!r}", "Fix"),
            in_init(scoped(name)),
        )
        for label, name in [("with_a_colon", "enc:0"), ("empty", ""), ("trailing_slash", "enc/")]
    },
    "default_name_with_an_empty_component": case(
        errors.InvalidNameError,
        V,
        ("scope name 'a//b'", "Fix"),
        in_init(scoped(None, default_name="a//b")),
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
            assigns(lambda: js.get_variable("c", [2], trainable=False), lambda: jnp.ones(2), "c:0"),
            stateful=True,
        ),
    ),
    # Leaf/subtree conflicts, in both orders.
    "variable_then_a_variable_below_it": case(
        errors.NameConflictError,
        V,
        ("enc/x/y", "enc/x is already a variable", "rename one"),
        *in_both(
            in_scope(
                scope_of("enc"), lambda: (js.get_variable("x", [1]), js.get_variable("x/y", [1]))
            ),
            {"enc": {"x": jnp.zeros(1)}},
        ),
    ),
    "variable_below_then_the_variable_above": case(
        errors.NameConflictError,
        V,
        ("enc/x", "already a scope holding variables (enc/x/y)", "rename one"),
        *in_both(
            in_scope(
                scope_of("enc"), lambda: (js.get_variable("x/y", [1]), js.get_variable("x", [1]))
            ),
            {"enc": {"x": {"y": jnp.zeros(1)}}},
        ),
    ),
    "variable_then_a_scope_of_the_same_name_holding_a_variable": case(
        errors.NameConflictError,
        V,
        ("enc/x/y", "enc/x", "rename one"),
        in_init(
            run_twice(
                in_scope(scope_of("enc"), lambda: js.get_variable("x", [1])),
                in_scope(scope_of("enc/x"), lambda: js.get_variable("y", [1])),
            )
        ),
    ),
    "auto_reuse_of_a_name_that_is_a_scope": case(
        errors.NameConflictError,
        V,
        ("enc/x", "enc/x/y", "rename one"),
        in_init(
            in_scope(
                scope_of("enc", reuse=js.AUTO_REUSE),
                lambda: (js.get_variable("x/y", [1]), js.get_variable("x", [1])),
            )
        ),
    ),
}


(
    test_misuse_raises_its_error_type_and_builtin_base,
    test_misuse_message_names_the_path_and_the_fix,
) = catalogue_tests(CATALOGUE)
