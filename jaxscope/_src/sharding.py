"""Variable shardings; the public part is documented in :mod:`jaxscope.sharding`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, PartitionSpec

from jaxscope._src import errors

Partitioner = Callable[[str, tuple[int, ...], Any], PartitionSpec | None]
"""``partitioner(full_name, shape, dtype) -> PartitionSpec | None``."""

replicated = PartitionSpec()
"""The spec of a variable held whole by every device."""


def as_spec(name: str, sharding: Any) -> PartitionSpec | None:
    """``sharding`` as a ``PartitionSpec`` (``None`` stays ``None``)."""
    if sharding is None or isinstance(sharding, PartitionSpec):
        return sharding
    if isinstance(sharding, (tuple, list)):
        return PartitionSpec(*sharding)
    raise errors.ShardingError(
        path=name,
        problem=f"has a sharding of type {type(sharding).__name__}, but a sharding must be "
        "a jax.sharding.PartitionSpec or a tuple of mesh axis names",
        fix="sharding=PartitionSpec('data', None)",
    )


def same_spec(a: PartitionSpec | None, b: PartitionSpec | None) -> bool:
    """Whether two specs lay a variable out alike: trailing ``None`` entries
    (replicated dims) do not count, so ``P("x")`` is ``P("x", None)``.

    >>> P = jax.sharding.PartitionSpec
    >>> js.sharding.same_spec(P("x"), P("x", None)), js.sharding.same_spec(P("x"), P())
    (True, False)
    """
    if a is None or b is None:
        return a is b

    def entries(spec: PartitionSpec) -> tuple:
        spec = tuple(spec)
        while spec and spec[-1] is None:
            spec = spec[:-1]
        return spec

    return entries(a) == entries(b)


def _axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _mesh_text(sizes: Mapping[str, int]) -> str:
    return "(" + ", ".join(f"{axis}={size}" for axis, size in sizes.items()) + ")"


def check(name: str, spec: PartitionSpec, shape: tuple[int, ...], mesh: Any = None) -> None:
    """Raise ``errors.ShardingError`` unless ``spec`` fits ``shape`` (and ``mesh``).

    Without a mesh only the number of entries is checked; with one, every
    axis must be in the mesh, used once, and divide its dim.
    """
    if len(spec) > len(shape):
        raise errors.ShardingError(
            path=name,
            problem=f"has shape {shape} ({len(shape)} dims) but its sharding {spec} has "
            f"{len(spec)} entries",
            fix="give at most one entry per dim",
        )
    if mesh is None:
        return
    sizes = dict(mesh.shape)
    seen: set[str] = set()
    for dim, entry in enumerate(spec):
        total = 1
        for axis in _axes(entry):
            if axis not in sizes:
                raise errors.ShardingError(
                    path=name,
                    problem=f"has sharding {spec}, which names mesh axis {axis!r}, but the "
                    f"mesh has axes {tuple(sizes)} (sizes {_mesh_text(sizes)})",
                    fix="use one of those axes, add the axis to the mesh, or map the "
                    "logical name to one of them",
                )
            if axis in seen:
                raise errors.ShardingError(
                    path=name,
                    problem=f"has sharding {spec}, which uses mesh axis {axis!r} for more "
                    "than one dim",
                    fix="shard each dim over different axes",
                )
            seen.add(axis)
            total *= sizes[axis]
        if shape[dim] % total:
            raise errors.ShardingError(
                path=name,
                problem=f"has shape {shape}, whose dim {dim} has size {shape[dim]}, which "
                f"mesh axes {_axes(entry)} (size {total}, mesh {_mesh_text(sizes)}) do not "
                "divide",
                fix=f"pick a size divisible by {total}, or replicate that dim (None)",
            )


def active_mesh() -> Any:
    """The mesh set with ``jax.set_mesh``, or ``None``."""
    mesh = jax.sharding.get_abstract_mesh()
    return None if mesh.empty else mesh


def _explicit_axes(mesh: Any) -> tuple[str, ...]:
    return tuple(
        axis
        for axis, kind in zip(mesh.axis_names, mesh.axis_types, strict=True)
        if kind == AxisType.Explicit
    )


def place(value: jax.Array, spec: PartitionSpec | None) -> jax.Array:
    """``value`` laid out with ``spec`` on the active mesh (as is without one).

    ``Explicit`` axes use ``jax.sharding.reshard``, ``Auto`` ones
    ``jax.lax.with_sharding_constraint``. The spec must have passed
    :func:`check`."""
    mesh = active_mesh() if spec is not None else None
    if mesh is None:
        return value
    explicit = set(_explicit_axes(mesh))
    used = [axis for entry in spec for axis in _axes(entry)]
    if not explicit:
        return jax.lax.with_sharding_constraint(value, spec)
    if all(axis in explicit for axis in used):
        return jax.sharding.reshard(value, spec)
    # Mixed Explicit and Auto axes: reshard the explicit part, constrain the rest.
    value = jax.sharding.reshard(value, _only(spec, explicit))
    return jax.lax.with_sharding_constraint(value, spec)


def _only(spec: PartitionSpec, keep: set[str]) -> PartitionSpec:
    """``spec`` with every axis outside ``keep`` replaced by replication."""
    entries = []
    for entry in spec:
        axes = tuple(axis for axis in _axes(entry) if axis in keep)
        entries.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*entries)


def initialize(
    make: Callable[[jax.Array], jax.Array], key: jax.Array | None, spec: PartitionSpec | None
) -> jax.Array:
    """``make(key)`` computed directly with ``spec``'s sharding on the active mesh.

    Under ``jax.jit`` each device computes only its shard of the initializer's
    output: the constraint is applied while the axes are ``Auto``, so XLA
    partitions the random-bit generation (``jax_threefry_partitionable``, on
    by default) instead of computing the whole array and slicing it, which is
    what a ``reshard`` under ``Explicit`` axes would do. Without a mesh (or a
    spec) it is ``make(key)``.
    """
    mesh = active_mesh() if spec is not None else None
    if mesh is None:
        return make(key)
    explicit = _explicit_axes(mesh)
    if not explicit:
        return jax.lax.with_sharding_constraint(make(key), spec)

    def constrained(key: jax.Array | None) -> jax.Array:
        return jax.lax.with_sharding_constraint(make(key), spec)

    # The key goes in as an argument: auto_axes moves its arguments to the
    # all-Auto mesh, while a closed-over value would keep the Explicit type.
    born = jax.sharding.auto_axes(
        constrained, axes=explicit, out_sharding=_only(spec, set(explicit))
    )
    return born(key)


def constrain(value: jax.Array, spec: Any) -> jax.Array:
    """``value`` (an activation, a batch) constrained to ``spec`` on the active
    mesh; a no-op without a mesh, so one model runs on one device and on many.

    >>> x = js.sharding.constrain(jnp.ones((4, 3)), ("data", None))  # no mesh: as is
    >>> x.shape
    (4, 3)
    """
    spec = as_spec("(activation)", spec)
    mesh = active_mesh()
    if mesh is None or spec is None:
        return value
    check("(activation)", spec, tuple(value.shape), mesh)
    return place(value, spec)


# --- Ready partitioners -------------------------------------------------------------


def replicate(name: str, shape: tuple[int, ...], dtype: Any) -> PartitionSpec:
    """A partitioner that replicates every variable (``PartitionSpec()``).

    Use it on a sub-scope to turn off a partitioner inherited from above:
    ``js.variable_scope("norm", partitioner=js.sharding.replicate)``.
    """
    del name, shape, dtype
    return replicated


def shard_largest_axis(axis_name: str | tuple[str, ...], *, min_size: int = 1024) -> Partitioner:
    """A partitioner sharding each variable's largest dim over ``axis_name``.

    Among the dims that the mesh axis (or axes) divides, the largest is
    sharded (the last one on a tie, so a square kernel ``[in, out]`` is split
    by output features); the other dims are replicated. Variables with fewer
    than ``min_size`` elements, and variables no dim of which the axis
    divides, are replicated (``PartitionSpec()``). Without an active mesh
    it returns ``None`` (nothing to shard over: the variable is recorded
    unsharded). An axis missing from the mesh is a ``ShardingError`` naming
    the variable.

    Args:
        axis_name: a mesh axis name, or a tuple of names to shard over all of
            them (their sizes multiply).
        min_size: the number of elements below which a variable is replicated.

    Returns:
        ``partitioner(name, shape, dtype) -> PartitionSpec | None``.

    >>> partition = js.sharding.shard_largest_axis("model", min_size=16)
    >>> with jax.set_mesh(jax.make_mesh((1,), ("model",))):
    ...     partition("enc/w", (32, 64), jnp.float32), partition("enc/b", (8,), jnp.float32)
    (P(None, 'model'), P())
    """
    axes = _axes(axis_name)
    if not axes or not all(isinstance(axis, str) for axis in axes):
        raise errors.ShardingError(
            function="js.sharding.shard_largest_axis",
            argument="axis_name",
            problem=f"must be a mesh axis name or a tuple of names, got {axis_name!r}",
            fix="e.g. shard_largest_axis('model')",
        )

    def partitioner(name: str, shape: tuple[int, ...], dtype: Any) -> PartitionSpec | None:
        del dtype
        mesh = active_mesh()
        if mesh is None:
            return None
        if int(np.prod(shape, dtype=np.int64)) < min_size or not shape:
            return replicated
        sizes = dict(mesh.shape)
        missing = [axis for axis in axes if axis not in sizes]
        if missing:
            raise errors.ShardingError(
                path=name,
                problem=f"has a scope whose partitioner shard_largest_axis({axis_name!r}) "
                f"names mesh axis {missing[0]!r}, but the mesh has axes {tuple(sizes)} "
                f"(sizes {_mesh_text(sizes)})",
                fix="build the mesh with that axis, or give the partitioner one of the mesh's axes",
            )
        total = int(np.prod([sizes[axis] for axis in axes]))
        candidates = [dim for dim, size in enumerate(shape) if size % total == 0]
        if not candidates:
            return replicated
        dim = max(candidates, key=lambda d: (shape[d], d))
        entry = axes[0] if len(axes) == 1 else axes
        return PartitionSpec(*([None] * dim), entry, *([None] * (len(shape) - dim - 1)))

    partitioner.__name__ = partitioner.__qualname__ = f"shard_largest_axis({axis_name!r})"
    return partitioner


# --- Logical axis names -------------------------------------------------------------


class AxisRules:
    """Logical axis names mapped to mesh axes, so a model names what its dims
    mean (``"embed"``, ``"mlp"``, ``"vocab"``) and one table decides the layout.

    Calling the rules turns logical names into a ``PartitionSpec``: a name
    with a rule becomes its mesh axis (or axes, or ``None`` to replicate);
    ``None`` stays ``None``; a name without a rule is kept as is, so mesh
    axis names can be used directly (and a typo is reported by the sharding
    check, naming the variable). A plain object, not a global setting: pass
    it to the model or keep it next to it.

    >>> rules = js.sharding.AxisRules({"batch": "data", "embed": None, "mlp": "model"})
    >>> rules("embed", "mlp")
    P(None, 'model')
    >>> def model(x):
    ...     w = js.get_variable("w", [x.shape[-1], 8], sharding=rules("embed", "mlp"))
    ...     return js.sharding.constrain(x, rules("batch", None)) @ w
    >>> js.partition_specs(js.transform(model), 0, jnp.ones((2, 3)))
    {'w': P(None, 'model')}
    """

    def __init__(self, rules: Mapping[str, str | tuple[str, ...] | None]):
        for logical, target in rules.items():
            if not isinstance(logical, str) or not (
                target is None
                or isinstance(target, str)
                or (isinstance(target, tuple) and all(isinstance(t, str) for t in target))
            ):
                raise errors.ShardingError(
                    function="js.sharding.AxisRules",
                    problem=f"rule {logical!r} -> {target!r} does not map a name to a mesh "
                    "axis name, a tuple of names, or None",
                    fix="map each logical name (a str) to a mesh axis, a tuple of axes, or None",
                )
        self.rules = dict(rules)

    def __call__(self, *names: str | None) -> PartitionSpec:
        """The ``PartitionSpec`` for dims named ``names``."""
        return PartitionSpec(*(self.rules.get(n, n) if n is not None else None for n in names))

    def __repr__(self) -> str:
        return f"AxisRules({self.rules!r})"
