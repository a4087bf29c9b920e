"""Checkpoints on orbax's CheckpointManager; documented in :mod:`jaxscope.checkpoint`."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import warnings
from typing import Any

import jax
import numpy as np

from jaxscope._src import checkpoint_manifest as manifest_lib
from jaxscope._src import checkpoint_storage as storage
from jaxscope._src.errors import (
    CheckpointArgumentError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointExistsError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointVersionError,
    CheckpointWriteError,
    describe_cause,
)


def all_steps(directory: str | os.PathLike) -> list[int]:
    """The steps of the finished checkpoints in ``directory``, ascending.

    Unfinished saves (orbax's ``*.orbax-checkpoint-tmp`` directories) and
    steps being deleted are not listed. A missing directory has no steps.

    >>> js.checkpoint.all_steps("/no/such/directory")
    []
    """
    return sorted(storage.step_dirs(storage.root_of(directory)))


def latest_step(directory: str | os.PathLike) -> int | None:
    """The highest finished step in ``directory``, or ``None`` if there is none.

    >>> js.checkpoint.latest_step("/no/such/directory") is None
    True
    """
    steps = all_steps(directory)
    return steps[-1] if steps else None


def _present(root: pathlib.Path) -> list[int] | None:
    """The steps in ``root``, or ``None`` if it cannot be listed."""
    try:
        return all_steps(root)
    except CheckpointError:
        return None


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise CheckpointArgumentError(
            argument="step",
            value=step,
            expected="a non-negative int",
            fix="pass the step as an int, e.g. the training step",
        )
    return int(step)


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise CheckpointArgumentError(
            argument=name, value=value, expected="True or False", fix=f"pass {name}=True or False"
        )
    return bool(value)


def save(
    directory: str | os.PathLike,
    step: int,
    tree: Any,
    *,
    keep: int | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Saves ``tree`` as checkpoint ``step`` under ``directory``, all or nothing.

    Args:
      directory: the checkpoint directory (created if missing); the step is
        written to ``directory/<step>``.
      step: a non-negative integer, usually the training step.
      tree: any pytree of arrays and scalars, e.g. ``{"params": params,
        "opt_state": opt_state, "step": step}``.
      keep: if given, keep the step just saved and the ``keep - 1`` highest
        other steps, deleting the rest once this save is complete.
      overwrite: replace an existing checkpoint of the same step; the old
        version is discarded only once the new one is written and verified
        (otherwise :class:`CheckpointExistsError`).

    Returns:
      The path of the finished checkpoint.

    Raises:
      CheckpointArgumentError: ``step``, ``keep`` or ``overwrite`` is invalid.
      CheckpointTreeError: the tree holds something that cannot be stored
        (checked before anything is written).
      CheckpointExistsError: the step exists and ``overwrite`` is False.
      CheckpointWriteError: writing failed (disk full, permissions, ...);
        nothing of this save is kept, and every earlier step is intact.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for step in (10, 20, 5):
    ...     _ = js.checkpoint.save(d, step, {"w": jnp.zeros(2)}, keep=2)
    >>> js.checkpoint.all_steps(d)  # step 5 and the highest other one
    [5, 20]
    """
    step = _check_step(step)
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, int | np.integer) or keep < 1
    ):
        raise CheckpointArgumentError(
            argument="keep",
            value=keep,
            expected="None or an int of at least 1",
            fix="keep=None keeps every step; keep=n the newest n",
        )
    overwrite = _check_flag(overwrite, "overwrite")
    root = storage.root_of(directory)
    leaves = manifest_lib.leaves_to_save(tree, dict(operation="save", step=step, directory=root))
    policy = storage.KeepNewest(int(keep), step) if keep is not None else None
    with storage.quiet_orbax():
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointWriteError(
                directory=root, step=step, cause=e, creating_directory=True
            ) from e
        try:
            with storage.exclusive(root):
                if storage.primary():
                    storage.recover(root)
                storage.sync("recovered")
                current = storage.step_dirs(root).get(step)
                if current is not None and not overwrite:
                    raise CheckpointExistsError(directory=root, step=step)
                if current is None:
                    _save_new(root, step, leaves, policy)
                else:
                    _save_over(root, step, current, leaves, policy)
        except OSError as e:  # renaming or deleting in the directory (writes are caught below)
            raise CheckpointWriteError(directory=root, step=step, cause=e, kept="earlier") from e
    return root / str(step)


_Leaves = list[manifest_lib.Leaf]


def _save_new(
    root: pathlib.Path,
    step: int,
    leaves: _Leaves,
    policy: storage.KeepNewest | None,
) -> None:
    """Saves a step that does not exist yet (orbax's manager applies keep)."""
    try:
        storage.write(root, step, leaves, policy)
    except Exception as e:
        if not (root / str(step)).is_dir():
            if storage.primary():
                storage.remove_unfinished(root, step)
                storage.empty_trash(root)
            raise CheckpointWriteError(directory=root, step=step, cause=e, kept="new") from e
        # Written: only deleting older steps (keep) failed.
        warnings.warn(
            f"Checkpoint {root / str(step)} is saved, but deleting older steps "
            f"(keep={policy.n if policy else None}) failed: {describe_cause(e)}",
            RuntimeWarning,
            stacklevel=3,
        )
    if storage.primary():
        storage.empty_trash(root)


def _save_over(
    root: pathlib.Path,
    step: int,
    current: pathlib.Path,
    leaves: _Leaves,
    policy: storage.KeepNewest | None,
) -> None:
    """Overwrites ``step``: old version aside, new one written and verified,
    then the old one discarded (see the module documentation)."""
    step_dir = root / str(step)
    previous = step_dir.with_name(step_dir.name + storage.PREVIOUS)
    if storage.primary():
        current.rename(previous)  # storage.recover made ``current`` the step directory
    storage.sync("set-aside")
    try:
        manifest = storage.write(root, step, leaves, None)
        _verify(step_dir, step, manifest)
    except BaseException as e:
        if storage.primary():
            if step_dir.exists():
                storage.trash(root, step_dir)
            previous.rename(step_dir)
            storage.remove_unfinished(root, step)
            storage.empty_trash(root)
        if isinstance(e, Exception):
            raise CheckpointWriteError(directory=root, step=step, cause=e, kept="previous") from e
        raise
    if storage.primary():
        storage.trash(root, previous)
    storage.sync("committed")
    if policy is not None:
        storage.delete_old_steps(root, policy)
    if storage.primary():
        storage.empty_trash(root)


def _verify(path: pathlib.Path, step: int, manifest: dict[str, Any]) -> None:
    """Reads a checkpoint just written back: its manifest, and every array
    whose checksum this process recorded."""
    if _read_manifest(path, path.parent, step) != manifest:
        raise CheckpointCorruptError(
            path=path, steps=_present(path.parent), problem="its manifest reads back changed"
        )
    entries = {
        name: entry for name, entry in manifest["variables"].items() if entry["crc32"] is not None
    }
    values = storage.read(path, entries, {name: None for name in entries}, partial=True)
    manifest_lib.in_threads(
        lambda name: _check_checksum(path, path.parent, name, entries[name], values.pop(name)),
        list(entries),
        manifest_lib.nbytes(values.values()) >= manifest_lib.PARALLEL_BYTES,
    )


def _manifest_error(path: pathlib.Path, root: pathlib.Path, what: str) -> CheckpointCorruptError:
    return CheckpointCorruptError(
        path=path,
        steps=_present(root),
        file=path / storage.MANIFEST_ITEM / storage.MANIFEST_FILE,
        problem=what,
    )


def _read_manifest(path: pathlib.Path, root: pathlib.Path, step: int) -> dict[str, Any]:
    """The manifest of the checkpoint at ``path``, every field checked (a
    :class:`CheckpointCorruptError` or :class:`CheckpointVersionError`)."""
    manifest_file = path / storage.MANIFEST_ITEM / storage.MANIFEST_FILE
    try:
        manifest = json.loads(manifest_file.read_bytes())
    except (OSError, ValueError) as e:  # missing, unreadable, not JSON, not UTF-8
        raise CheckpointCorruptError(
            path=path, steps=_present(root), file=manifest_file, cause=e
        ) from e
    if not isinstance(manifest, dict) or manifest.get("format") != manifest_lib.FORMAT:
        raise _manifest_error(path, root, f"is not a {manifest_lib.FORMAT} manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise _manifest_error(path, root, "has no valid format version")
    if version > manifest_lib.VERSION:
        raise CheckpointVersionError(path=path, version=version, newest=manifest_lib.VERSION)
    variables = manifest.get("variables")
    if not isinstance(variables, dict):
        raise _manifest_error(path, root, "has no variables")
    for name, entry in variables.items():
        problem = manifest_lib.check_entry(name, entry, version)
        if problem is not None:
            raise _manifest_error(path, root, f"is malformed: {problem}")
    if version >= 2 and manifest.get("crc32") != manifest_lib.manifest_checksum(variables):
        raise _manifest_error(path, root, "fails its checksum (the file is damaged)")
    if manifest.get("step") != step:
        raise _manifest_error(path, root, f"belongs to step {manifest.get('step')!r}")
    return manifest


def _mismatches(
    like: list[manifest_lib.Leaf], stored: dict[str, dict[str, Any]], partial: bool
) -> list[str]:
    """Every difference between the template and the checkpoint, as lines."""
    fmt = manifest_lib.fmt_spec
    problems = []
    for leaf in like:
        spec, saved = leaf.spec, stored.get(leaf.name)
        if saved is None:
            problems.append(f"{leaf.name}: missing from the checkpoint (`like` has {fmt(spec)})")
            continue
        saved_kind = "key" if saved["kind"] == "key" else "array"
        like_kind = "key" if spec["kind"] == "key" else "array"
        if saved_kind != like_kind or list(saved["shape"]) != spec["shape"]:
            problems.append(f"{leaf.name}: {fmt(saved)} in the checkpoint, {fmt(spec)} in `like`")
        elif saved["dtype"] != spec["dtype"]:
            problems.append(
                f"{leaf.name}: dtype {saved['dtype']} in the checkpoint, {spec['dtype']} in `like`"
            )
    if not partial:
        wanted = {leaf.name for leaf in like}
        problems.extend(
            f"{name}: in the checkpoint ({fmt(saved)}) but not in `like`"
            for name, saved in stored.items()
            if name not in wanted
        )
    return problems


def _placement(leaf: manifest_lib.Leaf) -> jax.sharding.Sharding | None:
    """Where to put a restored ``jax`` leaf: the template's sharding when the
    template is committed to one (an explicitly placed or sharded array, a
    ``ShapeDtypeStruct`` with a sharding); otherwise ``None``, meaning the
    default device, uncommitted, as a fresh ``jnp.asarray`` or jit output is.
    Matching the template matters: ``jax.jit`` compiles again for arguments
    that are committed where they were not."""
    if leaf.spec["kind"] not in ("jax", "key"):
        return None
    if isinstance(leaf.value, jax.ShapeDtypeStruct):
        return leaf.value.sharding
    return leaf.value.sharding if leaf.value.committed else None


def _check_checksum(
    path: pathlib.Path, root: pathlib.Path, name: str, entry: dict[str, Any], value: Any
) -> None:
    """Raises :class:`CheckpointCorruptError` if a restored array's checksum
    differs from the one recorded at save time."""
    recorded = entry["crc32"]
    actual = None if recorded is None else manifest_lib.checksum(value)
    if actual is not None and actual != recorded:
        raise CheckpointCorruptError(
            path=path,
            steps=_present(root),
            variable=name,
            problem=f"fails its checksum (crc32 {actual:#010x}, recorded {recorded:#010x})",
        )


def _to_template_kind(leaf: manifest_lib.Leaf, value: Any, entry: dict[str, Any]) -> Any:
    """A restored array as the kind of leaf the template has."""
    kind = leaf.spec["kind"]
    if kind in ("jax", "key") and not isinstance(value, jax.Array):
        # None: uncommitted, as the template. Waiting frees the host copy at
        # once, so that restoring never holds two copies of the whole tree.
        value = jax.block_until_ready(jax.device_put(value, _placement(leaf)))
    elif kind in ("numpy", "python"):
        value = np.asarray(value)
    if kind == "key":
        return jax.random.wrap_key_data(value, impl=entry["key_impl"])
    if kind == "python":
        return value.item()
    return value


_BATCH_BYTES = 1 << 28  # restore reads at least this much per orbax call


def _batches(leaves: _Leaves, stored: dict[str, Any]) -> list[_Leaves]:
    """The leaves in about four batches of at least ``_BATCH_BYTES``: orbax
    reads one while the previous one is checked."""

    def size(leaf: manifest_lib.Leaf) -> int:
        shape, dtype = storage.stored_shape(stored[leaf.name])
        return int(np.prod(shape)) * dtype.itemsize

    target = max(_BATCH_BYTES, sum(size(leaf) for leaf in leaves) // 4)
    batches: list[_Leaves] = [[]]
    filled = 0
    for leaf in leaves:
        if filled >= target:
            batches.append([])
            filled = 0
        batches[-1].append(leaf)
        filled += size(leaf)
    return batches


def _read_checked(
    path: pathlib.Path,
    root: pathlib.Path,
    manifest: dict[str, Any],
    leaves: _Leaves,
    verify: bool,
) -> list[Any]:
    """The arrays of ``leaves``, read by orbax, their checksums checked and
    each turned into its template's kind. Orbax reads batch after batch while
    a thread checks the batch read before."""
    stored = manifest["variables"]

    def read(batch: _Leaves) -> dict[str, Any]:
        try:
            if manifest["version"] == 1:
                return storage.read_version_1(path)
            entries = {leaf.name: stored[leaf.name] for leaf in batch}
            placements = {leaf.name: _placement(leaf) for leaf in batch}
            return storage.read(path, entries, placements, partial=len(entries) < len(stored))
        except CheckpointError:
            raise
        except Exception as e:  # orbax and tensorstore raise many types for bad files
            raise CheckpointCorruptError(path=path, steps=_present(root), cause=e) from e

    def finish(batch: _Leaves, values: dict[str, Any]) -> list[Any]:
        def one(leaf: manifest_lib.Leaf) -> Any:
            # The only reference to the array read is held here until it has
            # been checked and converted: memory for one more array per thread.
            value = values.pop(leaf.name)
            if verify:
                _check_checksum(path, root, leaf.name, stored[leaf.name], value)
            return _to_template_kind(leaf, value, stored[leaf.name])

        parallel = manifest_lib.nbytes(values.values()) >= manifest_lib.PARALLEL_BYTES
        return manifest_lib.in_threads(one, batch, parallel)

    batches = [leaves] if manifest["version"] == 1 else _batches(leaves, stored)
    out: list[Any] = []
    with concurrent.futures.ThreadPoolExecutor(1) as checker:
        checking = None
        for batch in batches:
            values = read(batch)
            if checking is not None:
                out += checking.result()
            checking = checker.submit(finish, batch, values)
        out += checking.result() if checking is not None else []
    return out


def restore(
    directory: str | os.PathLike,
    step: int | None = None,
    *,
    like: Any,
    partial: bool = False,
    verify: bool = True,
) -> Any:
    """Restores checkpoint ``step`` (the latest if ``None``) shaped like ``like``.

    Args:
      directory: the directory given to :func:`save`.
      step: the step to restore; ``None`` restores :func:`latest_step`.
      like: a template tree with the structure, shapes and dtypes expected,
        such as freshly initialized params and optimizer state, or their
        ``jax.eval_shape``. It is only read, never modified.
      partial: ignore saved entries that ``like`` lacks (e.g. restore only
        ``{"params": ...}`` from a training checkpoint).
      verify: compare each restored array's checksum with the one recorded
        at save time.

    Returns:
      A new tree with ``like``'s structure holding the saved values.

    Raises:
      CheckpointArgumentError: ``step``, ``partial`` or ``verify`` is invalid.
      CheckpointTreeError: ``like`` holds a leaf that no checkpoint can hold.
      CheckpointNotFoundError: no such step, or no checkpoint at all.
      CheckpointMismatchError: the checkpoint's paths, shapes or dtypes differ
        from ``like``'s; the message names every differing path.
      CheckpointCorruptError: files are missing, truncated or fail the checksum.
      CheckpointVersionError: the checkpoint's format is newer than this
        jaxscope reads.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = js.checkpoint.save(d, 1, {"w": jnp.arange(3.0), "step": 1})
    >>> js.checkpoint.restore(d, like={"w": jnp.zeros(3), "step": 0})["step"]
    1
    """
    if step is not None:
        step = _check_step(step)
    partial = _check_flag(partial, "partial")
    verify = _check_flag(verify, "verify")
    root = storage.root_of(directory)
    steps = storage.step_dirs(root)
    if step is None:
        if not steps:
            raise CheckpointNotFoundError(directory=root)
        step = max(steps)
    path = steps.get(step)
    if path is None:
        raise CheckpointNotFoundError(directory=root, step=step, steps=sorted(steps))
    where = dict(operation="restore", step=step, directory=root)
    flat, treedef = manifest_lib.flatten(like, "`like`", where)
    leaves = [
        manifest_lib.Leaf(name, keys, manifest_lib.leaf_spec(leaf, name, "`like`", where), leaf)
        for name, keys, leaf in flat
    ]
    with storage.quiet_orbax():
        manifest = _read_manifest(path, root, step)
        stored = manifest["variables"]
        problems = _mismatches(leaves, stored, partial)
        if problems:
            raise CheckpointMismatchError(path=path, differences=problems)
        out = _read_checked(path, root, manifest, leaves, verify)
    return jax.tree.unflatten(treedef, out)
