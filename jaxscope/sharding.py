"""Variable shardings: specs, partitioners and placement under a mesh.

A variable's sharding is a ``jax.sharding.PartitionSpec`` (a tuple of mesh
axis names is accepted too): one entry per leading dim, each a mesh axis
name, a tuple of names, or ``None`` (replicated along that dim). It comes from
``get_variable(..., sharding=P(None, "model"))``, or, when absent, from the
scope's ``partitioner(name, shape, dtype) -> PartitionSpec | None``
(inherited by sub-scopes like every scope setting). Ready partitioners:
:func:`shard_largest_axis` and :func:`replicate`. :class:`AxisRules` maps
logical axis names (``"embed"``, ``"mlp"``) to mesh axes.

Specs are only recorded until a mesh is active. Under ``jax.set_mesh(mesh)``
every spec is checked against the mesh (a clear ``js.errors.ShardingError``
naming the variable for an unknown axis, a dim the axes do not divide, too
many entries or an axis used twice), ``init`` creates each variable with its
sharding, and ``apply`` constrains each variable it reads to its spec, so
gradients and updated params keep the layout.

Run ``init`` under ``jax.jit`` and each variable is *born* sharded: the
initializer runs under the sharding constraint, so each device computes only
its own shard (with JAX's default partitionable threefry RNG) and the full
array never exists on one device. On meshes with ``Explicit`` axes, whose
types fix every value's sharding, the initializer runs under
``jax.sharding.auto_axes`` for that reason; a ``reshard`` of the finished
value would first compute the whole array on every device.

The usual recipe: compute the specs with :func:`jaxscope.partition_specs`
(under ``jax.eval_shape``, no memory) and hand them to ``jax.jit``:

>>> mesh = jax.make_mesh((1,), ("model",))
>>> def model(x):
...     with js.variable_scope("mlp", partitioner=js.sharding.shard_largest_axis("model", min_size=0)):
...         w = js.get_variable("w", [x.shape[-1], 8])
...         b = js.get_variable("b", [8], initializer=js.initializers.zeros,
...                             sharding=js.sharding.replicated)
...     return x @ w + b
>>> f = js.transform(model)
>>> x = jnp.ones((4, 3))
>>> with jax.set_mesh(mesh):
...     specs = js.partition_specs(f, 0, x)
...     params = jax.jit(f.init, out_shardings=specs)(0, x)
...     y = jax.jit(f.apply)(params, x)
>>> specs
{'mlp': {'w': P(None, 'model'), 'b': P()}}
>>> params["mlp"]["w"].sharding.spec
P(None, 'model')

Data parallelism is a batch sharded over a ``"data"`` axis
(``jax.device_put(batch, P("data"))``) with replicated params; tensor
parallelism is kernels sharded over a ``"model"`` axis. For tensor
parallelism prefer ``AxisType.Auto`` mesh axes (``jax.make_mesh(shape, names,
axis_types=(AxisType.Auto,) * n)``): XLA then chooses the collectives, while
``Explicit`` axes ask for an ``out_sharding`` on every matmul that contracts
a sharded dim. See ``docs/scaling.md``.
"""

from jaxscope._src.sharding import (
    AxisRules,
    Partitioner,
    active_mesh,
    constrain,
    replicate,
    replicated,
    same_spec,
    shard_largest_axis,
)

__all__ = [
    "AxisRules",
    "Partitioner",
    "constrain",
    "replicate",
    "replicated",
    "shard_largest_axis",
    "active_mesh",
    "same_spec",
]
