"""A checkpoint directory: orbax's CheckpointManager, the save lock, orbax's
logs, the processes of a multi-process job, recovery from a killed save, and
deletion.

Private to :mod:`jaxscope.checkpoint` (which documents the guarantees).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import pathlib
import re
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from jaxscope._src import checkpoint_manifest as manifest_lib
from jaxscope._src.errors import CheckpointArgumentError, CheckpointNotFoundError, describe_cause

TREE_ITEM = "tree"
MANIFEST_ITEM = "manifest"
MANIFEST_FILE = "metadata"  # the file orbax's JsonCheckpointHandler writes in its item
STEP_NAME = re.compile(r"0|[1-9][0-9]*")  # orbax's standard step names
PREVIOUS = ".jaxscope-previous"  # suffix: the old version of a step being overwritten
DELETING = ".jaxscope-deleting"  # where steps go to be deleted (one rename each)
ORBAX_TMP = ".orbax-checkpoint-tmp"  # orbax's suffix of an unfinished save


def root_of(directory: str | os.PathLike) -> pathlib.Path:
    """The checkpoint directory as an absolute path."""
    if not isinstance(directory, str | os.PathLike):
        raise CheckpointArgumentError(
            argument="directory",
            value=directory,
            expected="a path (str or os.PathLike)",
            fix="pass the checkpoint directory, e.g. 'checkpoints/run1'",
        )
    return pathlib.Path(directory).expanduser().absolute()


def step_dirs(root: pathlib.Path) -> dict[int, pathlib.Path]:
    """Each finished step and the directory holding its current version:
    ``<step>``, or ``<step>.jaxscope-previous`` while (or if, after a kill)
    the step is being overwritten."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        raise CheckpointNotFoundError(directory=root, cause=e) from e
    found: dict[int, pathlib.Path] = {}
    for entry in entries:
        name = entry.name.removesuffix(PREVIOUS)
        if STEP_NAME.fullmatch(name) and entry.is_dir():
            step = int(name)
            if entry.name.endswith(PREVIOUS) or step not in found:
                found[step] = root / entry.name
    return found


def orbax() -> Any:
    """orbax.checkpoint, imported on first use (not by `import jaxscope`)."""
    import orbax.checkpoint as ocp

    return ocp


class _OrbaxLogFilter(logging.Filter):
    """Drops orbax's log records while a jaxscope checkpoint call runs: the
    failures they describe reach the caller as typed errors instead."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.lock = threading.Lock()
        self.marker = f"{os.sep}orbax{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and self.marker in record.pathname)


_LOG_FILTER = _OrbaxLogFilter()


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    # orbax logs through absl.logging. Imported first, absl makes the "absl"
    # logger: one made before it would name absl's own file, not orbax's, as
    # each record's origin, and the filter would let every record through.
    orbax()
    absl_logger = logging.getLogger("absl")
    with _LOG_FILTER.lock:
        if _LOG_FILTER not in absl_logger.filters:
            absl_logger.addFilter(_LOG_FILTER)
        _LOG_FILTER.active += 1
    try:
        yield
    finally:
        with _LOG_FILTER.lock:
            _LOG_FILTER.active -= 1


def multiprocess() -> bool:
    """Whether this is one process of a multi-process JAX job."""
    return jax.process_count() > 1


def primary() -> bool:
    """Whether this process renames and deletes (process 0)."""
    return jax.process_index() == 0


_barriers = itertools.count()


def sync(what: str) -> None:
    """A barrier across the processes of a multi-process job (every process
    makes the same calls in the same order, so the counter agrees)."""
    if multiprocess():
        orbax().multihost.sync_global_processes(f"jaxscope.checkpoint.{what}.{next(_barriers)}")


_thread_locks: dict[str, threading.Lock] = {}


_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def exclusive(root: pathlib.Path) -> Iterator[None]:
    """Holds the directory's save lock: a lock per directory for threads,
    and ``flock`` on the directory itself for other processes (released by
    the kernel if the process dies)."""
    if multiprocess():
        yield  # one writer, coordinated by orbax
        return
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(os.path.realpath(root), threading.Lock())
    with lock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): threads are still serialized
            yield
            return
        fd = os.open(root, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:  # a file system without flock (some network ones)
                warnings.warn(
                    f"Checkpoint directory {root} cannot be locked ({describe_cause(e)}): "
                    "saves from other processes into it are not serialized.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            yield
        finally:
            os.close(fd)  # releases the flock


def trash(root: pathlib.Path, path: pathlib.Path) -> None:
    """Takes ``path`` out of sight in one rename; :func:`empty_trash`
    deletes it."""
    deleting = root / DELETING
    deleting.mkdir(exist_ok=True)
    path.rename(deleting / f"{path.name}.{uuid.uuid4().hex}")


def empty_trash(root: pathlib.Path) -> None:
    """Deletes what :func:`trash` and orbax's manager moved out of sight;
    what a kill leaves there, the next save deletes."""
    shutil.rmtree(root / DELETING, ignore_errors=True)


def recover(root: pathlib.Path) -> None:
    """Undoes what a save killed half-way left behind (process 0, under the
    lock): an overwrite that did not finish is rolled back (its old version
    becomes the step again), and the steps being deleted are deleted.
    Orbax's manager removes unfinished saves when it starts."""
    for previous in root.glob(f"*{PREVIOUS}"):
        step_dir = previous.with_name(previous.name.removesuffix(PREVIOUS))
        if not STEP_NAME.fullmatch(step_dir.name):
            continue
        if step_dir.exists():
            trash(root, step_dir)  # the new version, never verified
        previous.rename(step_dir)
    empty_trash(root)


def remove_unfinished(root: pathlib.Path, step: int) -> None:
    """Takes what a failed save of ``step`` left unfinished out of sight."""
    for unfinished in root.glob(f"{step}{ORBAX_TMP}*"):
        trash(root, unfinished)


@dataclasses.dataclass(frozen=True)
class KeepNewest:
    """Orbax preservation policy of ``save(..., keep=n)``: the step just
    saved and the ``n - 1`` highest of the others."""

    n: int
    saved: int

    def should_preserve(self, checkpoints: Any, *, context: Any = None) -> list[bool]:
        others = sorted((c.step for c in checkpoints if c.step != self.saved), reverse=True)
        kept = {self.saved, *others[: self.n - 1]}
        return [c.step in kept for c in checkpoints]


def open_manager(root: pathlib.Path, policy: KeepNewest | None) -> Any:
    """Orbax's manager of ``root``: synchronous, deleting by a rename into
    ``.jaxscope-deleting``, removing unfinished saves when it starts."""
    ocp = orbax()
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=False,
        preservation_policy=policy,
        cleanup_tmp_directories=True,  # safe: the lock excludes other saves
        todelete_subdir=DELETING,  # deleting a step is one rename
        save_root_metadata=False,
        lightweight_initialize=True,
        create=False,
    )
    return ocp.CheckpointManager(root, options=options)


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What a preservation policy reads of a step."""

    step: int
    time: Any = None
    metrics: Any = None


def delete_old_steps(root: pathlib.Path, policy: KeepNewest) -> None:
    """Applies ``policy`` through orbax's manager (only process 0 deletes),
    as the manager does itself after a save that is not an overwrite."""
    with open_manager(root, None) as manager:
        infos = [StepInfo(step) for step in manager.all_steps()]
        for info, keep in zip(infos, policy.should_preserve(infos), strict=True):
            if not keep:
                manager.delete(info.step)


@functools.cache
def _pending_manifest_save() -> type:
    """The orbax save argument of a manifest whose checksums are still being
    computed, and its handler (orbax's JSON handler, which first waits for
    them): the checksums are computed while orbax writes the arrays, and the
    step is renamed into place only once both are written."""
    ocp = orbax()

    class PendingManifestHandler(ocp.handlers.JsonCheckpointHandler):
        @classmethod
        def typestr(cls) -> str:  # what orbax records; the file is its JSON item's
            return "jaxscope.checkpoint.ManifestHandler"

        async def async_save(self, directory, item=None, args=None):
            manifest = await asyncio.wrap_future(args.manifest)
            return await super().async_save(directory, args=ocp.args.JsonSave(manifest))

    @ocp.args.register_with_handler(PendingManifestHandler, for_save=True)
    @dataclasses.dataclass
    class PendingManifestSave(ocp.args.CheckpointArgs):
        manifest: concurrent.futures.Future

    @ocp.args.register_with_handler(PendingManifestHandler, for_restore=True)
    @dataclasses.dataclass
    class ManifestRestore(ocp.args.CheckpointArgs):  # orbax's registry wants one
        item: Any = None

    return PendingManifestSave


def write(
    root: pathlib.Path,
    step: int,
    leaves: list[manifest_lib.Leaf],
    policy: KeepNewest | None,
) -> dict[str, Any]:
    """Saves ``step`` with orbax's manager, which writes it under a temporary
    name, renames it when complete, and then deletes what ``policy`` drops.
    Returns the manifest written (its checksums computed meanwhile)."""
    ocp = orbax()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        manifest = pool.submit(manifest_lib.build_manifest, step, leaves)
        items = {MANIFEST_ITEM: _pending_manifest_save()(manifest)}
        if leaves:  # orbax refuses an empty tree; the manifest alone says it is empty
            items[TREE_ITEM] = ocp.args.PyTreeSave(
                manifest_lib.nested(leaves, [x.value for x in leaves])
            )
        with open_manager(root, policy) as manager:
            manager.save(step, args=ocp.args.Composite(**items), force=True)
        return manifest.result()


def stored_shape(entry: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the array orbax holds for a manifest entry."""
    if entry["kind"] == "key":  # stored as its key data
        return tuple(entry["data_shape"]), np.dtype(entry["data_dtype"])
    return tuple(entry["shape"]), np.dtype(entry["dtype"])


def read(
    path: pathlib.Path,
    entries: dict[str, dict[str, Any]],
    placements: dict[str, jax.sharding.Sharding | None],
    partial: bool,
) -> dict[str, Any]:
    """The arrays of ``entries`` (name -> manifest entry) read by orbax:
    ``jax.Array`` placed as ``placements`` says, else numpy."""
    if not entries:
        return {}
    ocp = orbax()
    targets, args = [], []
    for name, entry in entries.items():
        shape, dtype = stored_shape(entry)
        sharding = placements[name]
        if sharding is None:
            targets.append(np.empty((0,), dtype))  # only its type and dtype matter
            args.append(ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype))
        else:
            targets.append(jax.ShapeDtypeStruct(shape, dtype, sharding=sharding))
            args.append(
                ocp.ArrayRestoreArgs(
                    restore_type=jax.Array, sharding=sharding, global_shape=shape, dtype=dtype
                )
            )
    leaves = [manifest_lib.Leaf(name, entry["keys"], {}, None) for name, entry in entries.items()]
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        restored = checkpointer.restore(
            path,
            ocp.args.Composite(
                **{
                    TREE_ITEM: ocp.args.PyTreeRestore(
                        manifest_lib.nested(leaves, targets),
                        manifest_lib.nested(leaves, args),
                        partial_restore=partial,
                    )
                }
            ),
        )[TREE_ITEM]
    finally:
        checkpointer.close()
    return {leaf.name: manifest_lib.lookup(restored, leaf.keys) for leaf in leaves}


def read_version_1(path: pathlib.Path) -> dict[str, Any]:
    """Every array of a checkpoint in format 1 (jaxscope 0.1.0), which
    handed orbax the tree itself: orbax rebuilds it from its metadata."""
    ocp = orbax()
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        restored = checkpointer.restore(
            path, ocp.args.Composite(**{TREE_ITEM: ocp.args.PyTreeRestore()})
        )[TREE_ITEM]
    finally:
        checkpointer.close()
    flat, _ = manifest_lib.flatten(restored, "the checkpoint", f"restore {path}")
    return {name: np.asarray(value) for name, _, value in flat}
