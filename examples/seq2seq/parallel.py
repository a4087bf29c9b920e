"""Data- and tensor-parallel training of the seq2seq example, on JAX's SPMD engine.

    # one device (the default)
    python -m examples.seq2seq.train --workdir workdir/one
    # 8 CPU devices: batch split in 2, kernels split in 4
    XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python -m examples.seq2seq.train --mesh data=2,model=4 --workdir workdir/mesh
    # 2 processes on one machine, 2 CPU devices each, data parallel
    python -m examples.seq2seq.train --mesh data=4 --local-devices 2 \\
        --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0 --workdir workdir/mh &
    python -m examples.seq2seq.train --mesh data=4 --local-devices 2 \\
        --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 1 --workdir workdir/mh

``--mesh data=N,model=M`` builds a ``jax.sharding.Mesh`` of ``N * M``
devices with ``Auto`` axes and sets it with ``jax.set_mesh`` for the whole
run. Each training batch is split over ``data`` (:func:`shard_batch`); the
model's variables get a scope partitioner,
``js.sharding.shard_largest_axis("model")``, when the mesh has a ``model``
axis (:func:`partition`), so kernels and embeddings are born sharded by the
jitted ``init`` and stay sharded through every train step; XLA inserts the
collectives. Nothing else in the training program changes: it is the same
jitted ``init`` and ``train_step`` as on one device.

With ``--coordinator`` the process first joins the others with
``jax.distributed.initialize`` (CPU collectives: gloo); every process builds
the same global batch (the data is a pure function of ``(seed, step)``) and
hands JAX only the rows of its own devices.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jaxscope as js

from . import models

AXES = ("data", "model")
MIN_SHARDED_SIZE = 1024  # variables with fewer elements stay replicated


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--mesh`` and the multi-process options to ``parser``."""
    group = parser.add_argument_group("devices and hosts")
    group.add_argument(
        "--mesh",
        help="data=N,model=M: split batches over N devices and kernels over M "
        "(N * M = all devices; default: one device)",
    )
    group.add_argument(
        "--coordinator", help="HOST:PORT of process 0, to train with several processes"
    )
    group.add_argument("--num-processes", type=int, default=1, help="processes in the run")
    group.add_argument("--process-id", type=int, default=0, help="this process's index")
    group.add_argument(
        "--local-devices", type=int, help="CPU devices this process owns (jax_num_cpu_devices)"
    )


def parse_mesh(text: str) -> dict[str, int]:
    """``"data=2,model=4"`` as ``{"data": 2, "model": 4}`` (in that order)."""
    sizes: dict[str, int] = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        name = name.strip()
        if name not in AXES or not size.strip().isdigit() or int(size) < 1 or name in sizes:
            raise SystemExit(
                f"--mesh {text!r}: expected data=N,model=M with positive sizes "
                f"(axes {', '.join(AXES)}, each at most once)"
            )
        sizes[name] = int(size)
    return {axis: sizes[axis] for axis in AXES if axis in sizes}


def make_mesh(text: str) -> jax.sharding.Mesh:
    """The mesh ``--mesh text`` asks for, over all devices (of all processes)."""
    sizes = parse_mesh(text)
    total = int(np.prod(list(sizes.values())))
    if total != jax.device_count():
        raise SystemExit(
            f"--mesh {text} needs {total} devices, but {jax.device_count()} are present "
            f"({jax.devices()[0].platform}). On CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={total} (or --local-devices)."
        )
    return jax.make_mesh(
        tuple(sizes.values()), tuple(sizes), axis_types=(AxisType.Auto,) * len(sizes)
    )


@contextlib.contextmanager
def setup(args: argparse.Namespace) -> Iterator[jax.sharding.Mesh | None]:
    """Joins the other processes (``--coordinator``) and sets the ``--mesh``
    for the duration of the block; yields the mesh (``None`` without one)."""
    if args.local_devices:
        jax.config.update("jax_num_cpu_devices", args.local_devices)
    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=120,
        )
    try:
        if args.mesh is None:
            yield None
        else:
            mesh = make_mesh(args.mesh)
            with jax.set_mesh(mesh):
                yield mesh
    finally:
        if args.coordinator:
            jax.distributed.shutdown()


def describe() -> str:
    """Where the run trains: the platform, and the mesh and processes if any."""
    mesh = jax.sharding.get_abstract_mesh()
    where = jax.devices()[0].platform
    if not mesh.empty:
        axes = ", ".join(f"{name}={size}" for name, size in mesh.shape.items())
        where += f" (mesh {axes}"
        if jax.process_count() > 1:
            where += f", process {jax.process_index()} of {jax.process_count()}"
        where += ")"
    return where


def _with_partitioner(fn: Callable) -> Callable:
    """``fn`` whose variables get ``shard_largest_axis("model")`` as the root
    scope's partitioner when the mesh active at trace time has a ``model``
    axis (decided per trace, so one model works with and without a mesh)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if "model" in jax.sharding.get_abstract_mesh().axis_names:
            js.get_variable_scope().set_partitioner(
                js.sharding.shard_largest_axis("model", min_size=MIN_SHARDED_SIZE)
            )
        return fn(*args, **kwargs)

    return wrapped


def partition(model: models.Seq2Seq) -> models.Seq2Seq:
    """``model`` with its kernels sharded over the mesh's ``model`` axis."""
    return models.Seq2Seq(*(js.transform(_with_partitioner(t.fn)) for t in model))


def shard_state(
    init: Callable[[], dict[str, Any]],
    optimizer: optax.GradientTransformation,
    train: js.Transformed,
    batch: dict[str, np.ndarray],
) -> Callable[[], dict[str, Any]]:
    """``init`` whose whole training state is born sharded under a mesh.

    The params get ``js.partition_specs`` (the partitioner's choices), the
    optimizer's moments the spec of their param (``optax.tree_map_params``),
    the rest is replicated; ``jax.jit(init, out_shardings=...)`` then creates
    every array directly with its layout. Without a mesh it is ``init``.
    """

    def specs() -> dict[str, Any]:
        abstract = jax.eval_shape(init)
        params = js.partition_specs(train, 0, batch["src"], batch["src_mask"], batch["tgt_in"])
        opt_state = optax.tree_map_params(
            optimizer,
            lambda _, spec: spec,
            abstract["opt_state"],
            params,
            transform_non_params=lambda _: PartitionSpec(),
        )
        return {"params": params, "opt_state": opt_state, "step": PartitionSpec()}

    @functools.cache
    def compiled(mesh: jax.sharding.AbstractMesh) -> Callable[[], dict[str, Any]]:
        del mesh  # the cache key: specs depend on the mesh's axes
        return jax.jit(init, out_shardings=specs())

    @functools.wraps(init)
    def sharded() -> dict[str, Any]:
        mesh = jax.sharding.get_abstract_mesh()  # also inside jax.eval_shape
        return init() if mesh.empty else compiled(mesh)()

    return sharded


def shard_batch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """``batch`` split over the mesh's ``data`` axis (rows; the rest
    replicated), as global arrays; as is without a mesh.

    Every process passes the same global batch and JAX reads only the rows of
    the process's own devices.
    """
    mesh = jax.sharding.get_mesh()
    if mesh.empty:
        return batch
    data = mesh.shape.get("data", 1)

    def put(x: np.ndarray) -> jax.Array:
        if x.shape[0] % data:
            raise SystemExit(
                f"batch of {x.shape[0]} rows cannot be split over data={data} devices: "
                "pick --batch-size divisible by the data axis"
            )
        spec = PartitionSpec("data") if "data" in mesh.shape else PartitionSpec()
        return jax.make_array_from_callback(x.shape, NamedSharding(mesh, spec), lambda i: x[i])

    return {name: put(np.asarray(x)) for name, x in batch.items()}
