"""The public API: each public namespace exports exactly its documented names.

The implementation lives in ``jaxscope._src``; these lists change only when
the public API does."""

import importlib
import pathlib
import subprocess
import sys
import types

import pytest

PUBLIC_JS = [
    "AUTO_REUSE",
    "Template",
    "Transformed",
    "TransformedWithState",
    "VariableScope",
    "apply_constraints",
    "assign",
    "checkpoint",
    "constraint_projection",
    "cond",
    "errors",
    "flatten",
    "flax_module",
    "from_haiku",
    "get_constraints",
    "get_regularization_loss",
    "get_regularization_losses",
    "get_variable",
    "get_variable_scope",
    "haiku_interop",
    "initializers",
    "labels",
    "layer_stack",
    "load_tf1_checkpoint",
    "make_template",
    "merge",
    "name_scope",
    "next_rng_key",
    "nn",
    "nnx_module",
    "partition",
    "partition_specs",
    "precision",
    "remat",
    "scan",
    "select",
    "sharding",
    "stack_layers",
    "summary",
    "tf1",
    "to_flax",
    "to_nnx",
    "transform",
    "transform_with_state",
    "unflatten",
    "unstack_layers",
    "variable_scope",
    "vmap",
    "while_loop",
]

PUBLIC_NN = [
    "KVCache",
    "LSTMState",
    "bahdanau_attention",
    "batch_norm",
    "bidirectional_dynamic_rnn",
    "causal_mask",
    "conv1d",
    "conv2d",
    "conv2d_transpose",
    "dense",
    "dropout",
    "dynamic_rnn",
    "embedding",
    "embedding_attend",
    "gru_cell",
    "layer_norm",
    "lstm_cell",
    "luong_attention",
    "masked_softmax",
    "memory_cache",
    "multi_head_attention",
    "multi_rnn_cell",
    "sequence_loss",
    "tf1_dropout",
]

PUBLIC_ERRORS = [
    "ScopeError",
    "VariableExistsError",
    "VariableMissingError",
    "ShapeMismatchError",
    "DtypeMismatchError",
    "InvalidNameError",
    "NameConflictError",
    "InitializerError",
    "InvalidParamsError",
    "ArgumentError",
    "ScopeArgumentError",
    "ArgumentTypeError",
    "ScopeNestingError",
    "NoTransformError",
    "StaleScopeError",
    "StateInStatelessTransformError",
    "AssignError",
    "MissingRNGError",
    "RawTransformError",
    "LayerBodyError",
    "LiftError",
    "ShardingError",
    "UnusedVariableError",
    "FlaxModuleTypeError",
    "SelectionError",
    "MergeConflictError",
    "TemplateVariableError",
    "CheckpointError",
    "CheckpointArgumentError",
    "CheckpointTreeError",
    "CheckpointExistsError",
    "CheckpointWriteError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "CheckpointVersionError",
    "TF1CheckpointError",
    "TF1ArgumentError",
    "TF1NameMapError",
    "TF1CheckpointNotFoundError",
    "TF1CheckpointCorruptError",
    "TF1UnsupportedEntryError",
    "TF1CheckpointMismatchError",
    "TF1DependencyError",
    "HaikuConversionError",
    "HaikuArgumentError",
    "HaikuNameMapError",
    "HaikuMismatchError",
]

PUBLIC_INITIALIZERS = [
    "Initializer",
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "truncated_normal",
    "random_uniform",
    "glorot_uniform",
    "glorot_normal",
    "variance_scaling",
    "orthogonal",
    "default_for",
]

PUBLIC_CHECKPOINT = [
    "CheckpointError",
    "CheckpointArgumentError",
    "CheckpointTreeError",
    "CheckpointExistsError",
    "CheckpointWriteError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "CheckpointVersionError",
    "save",
    "restore",
    "latest_step",
    "all_steps",
]

PUBLIC_SHARDING = [
    "AxisRules",
    "Partitioner",
    "constrain",
    "replicate",
    "replicated",
    "shard_largest_axis",
    "active_mesh",
    "same_spec",
]

PUBLIC_PRECISION = [
    "Policy",
    "float32_variable_storage_getter",
    "StaticLossScale",
    "DynamicLossScale",
    "all_finite",
    "select_tree",
]

PUBLIC_TF1 = [
    "DEFAULT_SKIP",
    "TF1ArgumentError",
    "TF1CheckpointCorruptError",
    "TF1CheckpointError",
    "TF1CheckpointMismatchError",
    "TF1CheckpointNotFoundError",
    "TF1DependencyError",
    "TF1LoadReport",
    "TF1NameMapError",
    "TF1UnsupportedEntryError",
    "is_bookkeeping",
    "load_tf1_checkpoint",
    "rename",
]

PUBLIC_HAIKU_INTEROP = [
    "DEFAULT_NAME_MAP",
    "HaikuArgumentError",
    "HaikuConversionError",
    "HaikuMismatchError",
    "HaikuNameMapError",
    "LoadReport",
    "from_haiku",
]

NAMESPACES = {
    "jaxscope": PUBLIC_JS,
    "jaxscope.nn": PUBLIC_NN,
    "jaxscope.errors": PUBLIC_ERRORS,
    "jaxscope.initializers": PUBLIC_INITIALIZERS,
    "jaxscope.checkpoint": PUBLIC_CHECKPOINT,
    "jaxscope.precision": PUBLIC_PRECISION,
    "jaxscope.sharding": PUBLIC_SHARDING,
    "jaxscope.tf1": PUBLIC_TF1,
    "jaxscope.haiku_interop": PUBLIC_HAIKU_INTEROP,
}


@pytest.mark.parametrize("name", sorted(NAMESPACES))
def test_a_public_namespace_exports_exactly_its_public_names(name):
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(NAMESPACES[name])
    assert sorted(n for n in dir(module) if not n.startswith("_")) == sorted(NAMESPACES[name])


def test_internals_are_not_reachable_from_the_public_namespaces():
    import jaxscope as js

    modules = {
        n for n in dir(js) if not n.startswith("_") and isinstance(getattr(js, n), types.ModuleType)
    }
    assert modules == {
        "checkpoint",
        "errors",
        "haiku_interop",
        "initializers",
        "nn",
        "precision",
        "sharding",
        "tf1",
    }
    for internal in ("as_spec", "check", "place", "initialize"):
        assert not hasattr(js.sharding, internal), internal
    assert not hasattr(js.errors, "describe_cause")


def test_error_classes_show_where_users_import_them_from():
    import jaxscope as js

    for name in PUBLIC_ERRORS:
        error = getattr(js.errors, name)
        assert f"{error.__module__}.{error.__qualname__}" == f"jaxscope.errors.{name}"


def _run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).parents[1],
        timeout=120,
    )
    return result.stdout.strip()


OPTIONAL = ("flax", "optax", "orbax", "rich", "tensorflow", "haiku", "tensorstore")


@pytest.mark.parametrize("statement", ["import jaxscope", "import jaxscope.nn"])
def test_importing_jaxscope_loads_only_jax_numpy_and_the_standard_library(statement):
    loaded = _run_python(
        "import sys, jax, jax.numpy, numpy\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'jax', 'jaxlib', 'numpy'}))\n"
        f"print([m for m in {OPTIONAL!r} if m in sys.modules])"
    )
    assert loaded.splitlines() == ["['jaxscope']", "[]"]


def test_the_flax_bridges_load_flax_when_first_used():
    loaded = _run_python(
        "import sys, jaxscope as js\n"
        "print('flax' in sys.modules)\n"
        "from jaxscope import to_nnx\n"
        "print('flax' in sys.modules, callable(js.flax_module), callable(to_nnx))"
    )
    assert loaded.splitlines() == ["False", "True True True"]
