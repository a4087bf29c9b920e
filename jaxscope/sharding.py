"""Variable shardings: specs, partitioners and placement under a mesh.

``get_variable(..., sharding=P("data", None))`` records a
``jax.sharding.PartitionSpec`` (a tuple of mesh axis names is accepted too);
a scope's ``partitioner(name, shape, dtype) -> PartitionSpec | None`` fills it
in when absent. Under an active mesh (``with jax.set_mesh(mesh):``), ``init``
places each variable with its spec; run ``init`` under ``jax.jit`` and the
variable is born sharded, never gathered on one device.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AxisType, PartitionSpec

from jaxscope import errors

__all__ = ["as_spec", "check", "place", "active_mesh"]


def as_spec(name: str, sharding: Any) -> PartitionSpec | None:
    """``sharding`` as a ``PartitionSpec`` (``None`` stays ``None``)."""
    if sharding is None or isinstance(sharding, PartitionSpec):
        return sharding
    if isinstance(sharding, (tuple, list)):
        return PartitionSpec(*sharding)
    raise errors.ShardingError(
        f"Variable {name}: sharding must be a jax.sharding.PartitionSpec or a tuple "
        f"of mesh axis names, got {type(sharding).__name__}. Fix: "
        "sharding=PartitionSpec('data', None)."
    )


def _axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def check(name: str, spec: PartitionSpec, shape: tuple[int, ...], mesh: Any = None) -> None:
    """Raise ``errors.ShardingError`` unless ``spec`` fits ``shape`` (and ``mesh``)."""
    if len(spec) > len(shape):
        raise errors.ShardingError(
            f"Variable {name} has shape {shape} ({len(shape)} dims) but its sharding "
            f"{spec} has {len(spec)} entries. Fix: give at most one entry per dim."
        )
    if mesh is None:
        return
    sizes = dict(mesh.shape)
    for dim, entry in enumerate(spec):
        total = 1
        for axis in _axes(entry):
            if axis not in sizes:
                raise errors.ShardingError(
                    f"Variable {name}: sharding {spec} names mesh axis {axis!r}, but "
                    f"the mesh has axes {tuple(sizes)}. Fix: use one of those axes."
                )
            total *= sizes[axis]
        if shape[dim] % total:
            raise errors.ShardingError(
                f"Variable {name}: dim {dim} of shape {shape} has size {shape[dim]}, "
                f"which mesh axes {_axes(entry)} (size {total}) do not divide. Fix: "
                "pick a divisible size or replicate that dim (None)."
            )


def active_mesh() -> Any:
    """The mesh set with ``jax.set_mesh``, or ``None``."""
    mesh = jax.sharding.get_abstract_mesh()
    return None if mesh.empty else mesh


def place(value: jax.Array, spec: PartitionSpec | None) -> jax.Array:
    """``value`` laid out with ``spec`` on the active mesh (as is without one).
    The spec must have passed :func:`check`."""
    mesh = active_mesh() if spec is not None else None
    if mesh is None:
        return value
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    used = [axis for entry in spec for axis in _axes(entry)]
    if used and all(types[axis] == AxisType.Explicit for axis in used):
        return jax.sharding.reshard(value, spec)
    return jax.lax.with_sharding_constraint(value, spec)
