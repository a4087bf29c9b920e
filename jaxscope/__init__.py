"""jaxscope: TF1's variable scopes for JAX, without classes or graphs.

A model is a plain function that asks for variables by name inside nested
scopes; :func:`transform` turns it into a pure ``init``/``apply`` pair whose
variables live in a nested dict keyed by the scoped names.

>>> import jax, jax.numpy as jnp
>>> import jaxscope as js
>>> def model(x):
...     with js.variable_scope("dense"):
...         w = js.get_variable("w", [x.shape[-1], 10])
...         b = js.get_variable("b", [10], initializer=js.initializers.zeros)
...     return x @ w + b
>>> f = js.transform(model)
>>> x = jnp.ones((2, 3))
>>> params = f.init(jax.random.key(0), x)
>>> jax.jit(f.apply)(params, x).shape
(2, 10)
"""

import importlib as _importlib
import typing as _typing

from jaxscope import checkpoint, errors, haiku_interop, initializers, nn, precision, sharding, tf1
from jaxscope._src.constraints import apply_constraints, constraint_projection, get_constraints
from jaxscope._src.haiku_interop import from_haiku
from jaxscope._src.introspection import partition_specs, summary
from jaxscope._src.lift import (
    cond,
    layer_stack,
    remat,
    scan,
    stack_layers,
    unstack_layers,
    vmap,
    while_loop,
)
from jaxscope._src.regularization import get_regularization_loss, get_regularization_losses
from jaxscope._src.rng import next_rng_key
from jaxscope._src.scope_settings import AUTO_REUSE
from jaxscope._src.scopes import (
    VariableScope,
    get_variable_scope,
    name_scope,
    variable_scope,
)
from jaxscope._src.selection import labels, merge, partition, select
from jaxscope._src.template import Template, make_template
from jaxscope._src.tf1 import load_tf1_checkpoint
from jaxscope._src.transform import (
    Transformed,
    TransformedWithState,
    transform,
    transform_with_state,
)
from jaxscope._src.trees import flatten, unflatten
from jaxscope._src.variables import assign, get_variable

if _typing.TYPE_CHECKING:
    from jaxscope._src.flax_interop import flax_module, to_flax
    from jaxscope._src.nnx_interop import nnx_module, to_nnx

__version__ = "0.1.0"

# The Flax bridges load flax when first used, so that `import jaxscope` loads
# only jax and numpy.
_LAZY = {
    "flax_module": "jaxscope._src.flax_interop",
    "to_flax": "jaxscope._src.flax_interop",
    "nnx_module": "jaxscope._src.nnx_interop",
    "to_nnx": "jaxscope._src.nnx_interop",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'jaxscope' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
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
