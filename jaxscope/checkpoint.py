"""Checkpoints of params, state and optimizer state, with orbax-checkpoint.

A checkpoint directory holds one sub-directory per step, ``<directory>/<step>``,
in orbax's layout (``ocp.CheckpointManager`` can read it too): the pytree
itself, written by orbax, and a small JSON manifest with each leaf's path,
shape, dtype and CRC32 checksum.

- :func:`save` is atomic: orbax writes into ``<step>.orbax-checkpoint-tmp``
  and renames it to ``<step>`` once everything is on disk, so a save killed
  half-way leaves the last good checkpoint as the latest one.
- :func:`restore` checks the checkpoint against a template (``like``) before
  reading any array: a missing or extra variable, or a shape or dtype that
  differs, raises :class:`CheckpointMismatchError` naming every path that
  differs. Unreadable or truncated files and checksum mismatches raise
  :class:`CheckpointCorruptError`. Restoring builds new arrays and never
  touches the template, so on failure the caller's trees are as they were.

>>> import tempfile
>>> directory = tempfile.mkdtemp()
>>> params = {"dense": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}}
>>> path = js.checkpoint.save(directory, 100, params)
>>> js.checkpoint.latest_step(directory)
100
>>> restored = js.checkpoint.restore(directory, like=params)
>>> bool((restored["dense"]["w"] == params["dense"]["w"]).all())
True

Leaves may be ``jax.Array`` (restored with the template leaf's sharding if
it is committed to one, else uncommitted on the default device, so that
``jax.jit`` sees the same placement and does not compile again),
``numpy`` arrays and scalars (restored as numpy), Python scalars (restored as
the same Python type), typed PRNG keys (stored as their key data) and, in the
template only, ``jax.ShapeDtypeStruct`` (so a template from ``jax.eval_shape``
costs no memory). Paths are the tree's keys joined by ``/``, like
:func:`jaxscope.flatten`'s names: ``params/encoder/lstm/kernel``,
``opt_state/1/0/mu/encoder/lstm/kernel``.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import zlib
from typing import Any

import jax
import numpy as np

from jaxscope import errors

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointExistsError",
    "save",
    "restore",
    "latest_step",
    "all_steps",
]

FORMAT = "jaxscope.checkpoint"
VERSION = 1
_TREE_ITEM = "tree"
_MANIFEST_ITEM = "manifest"
_TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax's; a directory named so is unfinished
_TRASH_SUFFIX = _TMP_SUFFIX + "-deleting"
_MAX_LISTED = 12


class CheckpointError(errors.ScopeError, ValueError):
    """Base class of the errors raised by :mod:`jaxscope.checkpoint`."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not match the template given to :func:`restore`.

    Raised before any array is read, listing every path that is missing from
    the checkpoint, missing from the template, or stored with another shape or
    dtype. Fix: build the template the way the saved tree was built (same
    model config, same optimizer), or pass ``partial=True`` to ignore saved
    entries that the template lacks.
    """


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The directory holds no finished checkpoint, or not the step asked for."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's files cannot be read (truncated, deleted or garbled), or
    a restored array's checksum differs from the one recorded at save time.

    Fix: restore an earlier step (see :func:`all_steps`).
    """


class CheckpointExistsError(CheckpointError, FileExistsError):
    """:func:`save` is asked to write a step that already exists.

    Fix: pass ``overwrite=True``, or save under another step.
    """


# --- paths and leaves -------------------------------------------------------


def _key_name(key: Any) -> str:
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def _flatten(tree: Any, what: str) -> tuple[list[str], list[Any], Any]:
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = ["/".join(_key_name(k) for k in path) or "<root>" for path, _ in path_leaves]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise CheckpointError(
            f"Two leaves of the {what} tree have the same path {dup!r} (a key contains '/'?). "
            "Fix: use keys without '/'."
        )
    return names, [leaf for _, leaf in path_leaves], treedef


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key
    )


def _kind(leaf: Any, name: str) -> str:
    if _is_key(leaf):
        return "key"
    if isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        return "jax"
    if isinstance(leaf, np.ndarray | np.generic):
        return "numpy"
    if isinstance(leaf, bool | int | float | complex):
        return "python"
    raise CheckpointError(
        f"Cannot checkpoint {name}: a leaf of type {type(leaf).__name__}. Fix: keep only "
        "arrays and scalars in the tree (put other values in a separate file)."
    )


def _spec(leaf: Any, name: str) -> dict[str, Any]:
    """Shape, dtype and kind of a leaf, as recorded in the manifest."""
    kind = _kind(leaf, name)
    if kind == "python":
        leaf = np.asarray(leaf)
    spec = {"kind": kind, "shape": list(np.shape(leaf)), "dtype": str(leaf.dtype)}
    if kind == "key" and isinstance(leaf, jax.Array):
        spec["key_impl"] = str(jax.random.key_impl(leaf))
    return spec


def _stored_value(leaf: Any, kind: str) -> Any:
    """The array orbax writes for a leaf."""
    if kind == "key":
        return jax.random.key_data(leaf)
    if kind == "python":
        return np.asarray(leaf)
    return leaf


def _checksum(value: Any) -> int | None:
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return None  # multi-host: this process cannot see the whole array
    host = np.ascontiguousarray(np.asarray(value))
    return zlib.crc32(host.view(np.uint8).reshape(-1)) if host.size else 0


def _fmt_spec(spec: dict[str, Any]) -> str:
    return f"shape {tuple(spec['shape'])} {spec['dtype']}"


# --- directory layout ------------------------------------------------------


def _directory(directory: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(directory).expanduser().absolute()


def all_steps(directory: str | os.PathLike) -> list[int]:
    """The steps of the finished checkpoints in ``directory``, ascending.

    Unfinished saves (orbax's ``*.orbax-checkpoint-tmp*`` directories) are not
    listed. A missing directory has no steps.
    """
    root = _directory(directory)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir())


def latest_step(directory: str | os.PathLike) -> int | None:
    """The highest finished step in ``directory``, or ``None`` if there is none.

    >>> js.checkpoint.latest_step("/no/such/directory") is None
    True
    """
    steps = all_steps(directory)
    return steps[-1] if steps else None


def _remove(path: pathlib.Path) -> None:
    """Deletes a checkpoint directory so that a crash half-way never leaves a
    partial directory under a step's name: rename first, then delete."""
    trash = path.with_name(path.name + _TRASH_SUFFIX)
    if trash.exists():
        shutil.rmtree(trash)
    path.rename(trash)
    shutil.rmtree(trash)


def _remove_stale_tmp(root: pathlib.Path, step: int) -> None:
    """Removes what a save of ``step`` killed half-way left behind."""
    if jax.process_count() > 1:
        return  # another process may be writing it
    for stale in root.glob(f"{step}{_TMP_SUFFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _checkpointer() -> Any:
    import orbax.checkpoint as ocp

    return ocp, ocp.Checkpointer(ocp.CompositeCheckpointHandler())


# --- save and restore --------------------------------------------------------


def save(
    directory: str | os.PathLike,
    step: int,
    tree: Any,
    *,
    keep: int | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Saves ``tree`` as checkpoint ``step`` under ``directory``, atomically.

    Args:
      directory: the checkpoint directory (created if missing); the step is
        written to ``directory/<step>``.
      step: a non-negative integer, usually the training step.
      tree: any pytree of arrays and scalars, e.g. ``{"params": params,
        "opt_state": opt_state, "step": step}``.
      keep: if given, delete all but the ``keep`` most recent steps after this
        save succeeds.
      overwrite: replace an existing checkpoint of the same step (otherwise
        :class:`CheckpointExistsError`).

    Returns:
      The path of the finished checkpoint.
    """
    if not isinstance(step, int | np.integer) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"step must be a non-negative int, got {step!r}.")
    if keep is not None and keep < 1:
        raise CheckpointError(f"keep must be at least 1, got {keep}.")
    step = int(step)
    names, leaves, treedef = _flatten(tree, "saved")
    variables = {}
    stored = []
    for name, leaf in zip(names, leaves, strict=True):
        spec = _spec(leaf, name)
        value = _stored_value(leaf, spec["kind"])
        if spec["kind"] == "key":
            spec["data_shape"], spec["data_dtype"] = list(value.shape), str(value.dtype)
        spec["crc32"] = _checksum(value)
        variables[name] = spec
        stored.append(value)
    manifest = {"format": FORMAT, "version": VERSION, "step": step, "variables": variables}

    root = _directory(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / str(step)
    previous = None
    if final.exists():
        if not overwrite:
            raise CheckpointExistsError(
                f"Checkpoint {final} already exists. Fix: pass overwrite=True, or save "
                "under another step."
            )
        previous = final.with_name(final.name + _TRASH_SUFFIX)
        if previous.exists():
            shutil.rmtree(previous)
        final.rename(previous)
    _remove_stale_tmp(root, step)
    ocp, checkpointer = _checkpointer()
    try:
        checkpointer.save(
            final,
            ocp.args.Composite(
                **{
                    _TREE_ITEM: ocp.args.PyTreeSave(jax.tree.unflatten(treedef, stored)),
                    _MANIFEST_ITEM: ocp.args.JsonSave(manifest),
                }
            ),
        )
    finally:
        checkpointer.close()
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    if keep is not None:
        for old in all_steps(root)[:-keep]:
            _remove(root / str(old))
    return final


def _read_manifest(path: pathlib.Path) -> dict[str, Any]:
    manifest_file = path / _MANIFEST_ITEM / "metadata"
    try:
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("variables"), dict):
            raise ValueError(f"not a {FORMAT} manifest")
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointCorruptError(
            f"Checkpoint {path} is unreadable: its manifest {manifest_file} could not be "
            f"read ({type(e).__name__}: {e}). Fix: restore an earlier step "
            f"(steps present: {all_steps(path.parent)})."
        ) from e
    if manifest.get("version", 0) > VERSION:
        raise CheckpointError(
            f"Checkpoint {path} was written by a newer jaxscope (format version "
            f"{manifest['version']}, this one reads {VERSION}). Fix: upgrade jaxscope."
        )
    return manifest


def _mismatches(
    path: pathlib.Path,
    names: list[str],
    specs: list[dict[str, Any]],
    stored: dict[str, dict[str, Any]],
    partial: bool,
) -> list[str]:
    problems = []
    for name, spec in zip(names, specs, strict=True):
        saved = stored.get(name)
        if saved is None:
            problems.append(f"{name}: missing from the checkpoint (`like` has {_fmt_spec(spec)})")
            continue
        saved_kind = "key" if saved.get("kind") == "key" else "array"
        like_kind = "key" if spec["kind"] == "key" else "array"
        if saved_kind != like_kind or list(saved["shape"]) != spec["shape"]:
            problems.append(
                f"{name}: {_fmt_spec(saved)} in the checkpoint, {_fmt_spec(spec)} in `like`"
            )
        elif saved["dtype"] != spec["dtype"]:
            problems.append(
                f"{name}: dtype {saved['dtype']} in the checkpoint, {spec['dtype']} in `like`"
            )
    if not partial:
        wanted = set(names)
        problems.extend(
            f"{name}: in the checkpoint ({_fmt_spec(saved)}) but not in `like`"
            for name, saved in stored.items()
            if name not in wanted
        )
    return problems


def _placement(leaf: Any) -> jax.sharding.Sharding | None:
    """Where to put a restored ``jax`` leaf: the template's sharding when the
    template is committed to one (an explicitly placed or sharded array, a
    ``ShapeDtypeStruct`` with a sharding); otherwise ``None``, meaning the
    default device, uncommitted, as a fresh ``jnp.asarray`` or jit output is.
    Matching the template matters: ``jax.jit`` compiles again for arguments
    that are committed where they were not."""
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf.sharding
    return leaf.sharding if leaf.committed else None


def _abstract(leaf: Any, spec: dict[str, Any], saved: dict[str, Any]) -> tuple[Any, Any]:
    """The target orbax restores a leaf into, and its restore arguments."""
    import orbax.checkpoint as ocp

    if spec["kind"] == "key":  # stored as its key data
        shape, dtype = tuple(saved["data_shape"]), np.dtype(saved["data_dtype"])
    else:
        shape, dtype = tuple(saved["shape"]), np.dtype(saved["dtype"])
    sharding = _placement(leaf) if spec["kind"] in ("jax", "key") else None
    if sharding is not None:
        target = jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
        return target, ocp.ArrayRestoreArgs(
            restore_type=jax.Array, sharding=sharding, global_shape=shape, dtype=dtype
        )
    return np.zeros(shape, dtype), ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype)


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
      CheckpointNotFoundError: no such step, or no checkpoint at all.
      CheckpointMismatchError: the checkpoint's paths, shapes or dtypes differ
        from ``like``'s; the message names every differing path.
      CheckpointCorruptError: files are missing, truncated or fail the checksum.
    """
    root = _directory(directory)
    if step is None:
        step = latest_step(root)
        if step is None:
            raise CheckpointNotFoundError(
                f"No finished checkpoint in {root}. Fix: check the directory, or save one first."
            )
    path = root / str(int(step))
    if not path.is_dir():
        raise CheckpointNotFoundError(
            f"No checkpoint for step {step} in {root}; steps present: {all_steps(root)}."
        )
    names, leaves, treedef = _flatten(like, "`like`")
    specs = [_spec(leaf, name) for name, leaf in zip(names, leaves, strict=True)]
    manifest = _read_manifest(path)
    stored = manifest["variables"]
    problems = _mismatches(path, names, specs, stored, partial)
    if problems:
        listed = "\n  ".join(problems[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        raise CheckpointMismatchError(
            f"Checkpoint {path} does not match the template `like` "
            f"({len(problems)} difference(s)):\n  {listed}{more}\n"
            "Fix: build `like` the way the saved tree was built (same model config and "
            "optimizer), or pass partial=True to ignore saved entries that `like` lacks."
        )

    targets, restore_args = (
        zip(
            *(
                _abstract(leaf, spec, stored[name])
                for name, leaf, spec in zip(names, leaves, specs, strict=True)
            ),
            strict=True,
        )
        if names
        else ((), ())
    )
    ocp, checkpointer = _checkpointer()
    try:
        restored = checkpointer.restore(
            path,
            ocp.args.Composite(
                **{
                    _TREE_ITEM: ocp.args.PyTreeRestore(
                        jax.tree.unflatten(treedef, targets),
                        jax.tree.unflatten(treedef, restore_args),
                        partial_restore=partial,
                    )
                }
            ),
        )[_TREE_ITEM]
    except Exception as e:  # orbax and tensorstore raise many types for bad files
        first_line = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise CheckpointCorruptError(
            f"Checkpoint {path} could not be read ({type(e).__name__}: {first_line}). "
            f"Fix: restore an earlier step (steps present: {all_steps(root)})."
        ) from e
    finally:
        checkpointer.close()

    values = jax.tree.leaves(restored) if names else []
    if len(values) != len(names):
        raise CheckpointCorruptError(
            f"Checkpoint {path} restored {len(values)} arrays, expected {len(names)}."
        )
    out = []
    for name, spec, value in zip(names, specs, values, strict=True):
        saved = stored[name]
        if verify and saved.get("crc32") is not None:
            actual = _checksum(value)
            if actual is not None and actual != saved["crc32"]:
                raise CheckpointCorruptError(
                    f"Checkpoint {path}: {name} fails its checksum (crc32 {actual:#010x}, "
                    f"recorded {saved['crc32']:#010x}); the file is damaged. Fix: restore "
                    f"an earlier step (steps present: {all_steps(root)})."
                )
        if spec["kind"] in ("jax", "key") and not isinstance(value, jax.Array):
            value = jax.device_put(value)  # uncommitted, like the template (see _placement)
        if spec["kind"] == "key":
            value = jax.random.wrap_key_data(value, impl=saved["key_impl"])
        elif spec["kind"] == "python":
            value = value.item()
        out.append(value)
    return jax.tree.unflatten(treedef, out)
