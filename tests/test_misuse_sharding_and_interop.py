"""Misused shardings, Flax bridges, variable selection and templates.

The entries run through the two tests of :func:`tests.misuse.catalogue_tests`:
the error's type and built-in base, and the path and the fix in its message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import flax.linen as linen
import jax.numpy as jnp
from flax import nnx
from jax.sharding import PartitionSpec as P

import jaxscope as js
from jaxscope import errors

from .misuse import (
    DENSE,
    Misuse,
    V,
    case,
    catalogue_tests,
    gv,
    in_both,
    in_init,
    scoped,
    with_mesh,
)

_SCALE_TEMPLATE = js.make_template(
    "tmpl", lambda x, name: x * js.get_variable(name, [], initializer=js.initializers.ones)
)


CATALOGUE: dict[str, Misuse] = {
    # Shardings.
    "sharding_naming_an_axis_not_in_the_mesh": case(
        errors.ShardingError,
        V,
        ("enc/w", "'model'", "('data',)", "use one of those axes"),
        with_mesh(gv("w", [4, 2], sharding=P("model", None))),
    ),
    "sharding_with_more_entries_than_dims": case(
        errors.ShardingError,
        V,
        ("enc/w", "shape (4,)", "2 entries", "at most one entry per dim"),
        *in_both(gv("w", [4], sharding=P("data", None)), {"enc": {"w": jnp.zeros(4)}}),
    ),
    "sharding_that_is_not_a_partition_spec": case(
        errors.ShardingError,
        V,
        ("enc/w", "str", "PartitionSpec("),
        in_init(gv("w", [4], sharding="data")),
    ),
    "partitioner_returning_an_axis_not_in_the_mesh": case(
        errors.ShardingError,
        V,
        ("enc/w", "'model'", "use one of those axes"),
        with_mesh(scoped("enc", partitioner=lambda name, shape, dtype: P("model"))),
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


(
    test_misuse_raises_its_error_type_and_builtin_base,
    test_misuse_message_names_the_path_and_the_fix,
) = catalogue_tests(CATALOGUE)


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
