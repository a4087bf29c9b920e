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

from jaxscope import checkpoint, errors, initializers, nn, precision, sharding, tf1
from jaxscope._src.constraints import apply_constraints, constraint_projection, get_constraints
from jaxscope._src.flax_interop import flax_module, to_flax
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
from jaxscope._src.nnx_interop import nnx_module, to_nnx
from jaxscope._src.rng import next_rng_key
from jaxscope._src.scopes import (
    AUTO_REUSE,
    VariableScope,
    get_variable_scope,
    name_scope,
    variable_scope,
)
from jaxscope._src.selection import labels, merge, partition, select
from jaxscope._src.tf1 import load_tf1_checkpoint
from jaxscope._src.transform import (
    Transformed,
    TransformedWithState,
    transform,
    transform_with_state,
)
from jaxscope._src.trees import flatten, unflatten
from jaxscope._src.variables import (
    assign,
    get_regularization_loss,
    get_regularization_losses,
    get_variable,
)

__version__ = "0.1.0"

__all__ = [
    "AUTO_REUSE",
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
    "get_constraints",
    "get_regularization_loss",
    "get_regularization_losses",
    "get_variable",
    "get_variable_scope",
    "initializers",
    "labels",
    "layer_stack",
    "load_tf1_checkpoint",
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
