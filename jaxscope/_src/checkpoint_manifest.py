"""What a checkpoint records of a tree: the leaves' paths, their kinds,
shapes and dtypes, their checksums, and the manifest that holds them.

Private to :mod:`jaxscope.checkpoint` (which documents the format).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import jax
import numpy as np

from jaxscope._src.errors import CheckpointTreeError, describe_cause

FORMAT = "jaxscope.checkpoint"
VERSION = 2
KINDS = ("jax", "numpy", "python", "key")
PARALLEL_BYTES = 1 << 24  # checksum in threads above this many bytes
_T = TypeVar("_T")
_R = TypeVar("_R")


def key_name(key: Any) -> str:
    """A pytree key as a path component (``DictKey("a")`` -> ``a``)."""
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def escape(key: str) -> str:
    """A tree key as orbax sees it: ``%``, ``.`` and ``/`` percent-escaped
    (orbax joins keys with ``.``), the empty key as ``%``. Injective."""
    return "".join(f"%{ord(c):02X}" if c in "%./" else c for c in key) or "%"


@dataclasses.dataclass
class Leaf:
    """One leaf of a tree: its path and what the manifest records of it."""

    name: str  # the keys joined by "/": the path users see
    keys: list[str]
    spec: dict[str, Any]  # kind, shape, dtype (and key_impl for PRNG keys)
    value: Any  # save: the array orbax writes; restore: the template leaf


def flatten(
    tree: Any, what: str, where: dict[str, Any]
) -> tuple[list[tuple[str, list[str], Any]], Any]:
    """``(name, keys, leaf)`` per leaf of ``tree``, and its treedef. Paths
    that join to the same name are a :class:`CheckpointTreeError`."""
    try:
        path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    except Exception as e:  # e.g. dict keys of several types, which JAX cannot sort
        raise CheckpointTreeError(
            **where,
            tree=what,
            problem=f"JAX cannot flatten {what} ({describe_cause(e)})",
            fix="use a pytree of dicts, lists, tuples and registered nodes, with dict keys of "
            "one type",
        ) from e
    flat, first = [], {}
    for path, leaf in path_leaves:
        keys = [key_name(k) for k in path]
        name = "/".join(keys) or "<root>"
        if name in first:
            raise CheckpointTreeError(
                **where,
                tree=what,
                problem=f"two leaves of {what} have the path {name!r} (keys {first[name]} and "
                f"{keys}: a key contains '/')",
                fix="give them distinct keys",
            )
        first[name] = keys
        flat.append((name, keys, leaf))
    return flat, treedef


def is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key
    )


def storable(dtype: np.dtype) -> bool:
    return dtype == np.bool_ or jax.dtypes.issubdtype(dtype, np.number)


def leaf_spec(leaf: Any, name: str, what: str, where: dict[str, Any]) -> dict[str, Any]:
    """The manifest entry of a leaf (kind, shape, dtype), or a
    :class:`CheckpointTreeError` saying why it cannot be stored."""

    def refuse(why: str, fix: str) -> CheckpointTreeError:
        return CheckpointTreeError(**where, path=name, tree=what, problem=why, fix=fix)

    if is_key(leaf):
        spec = {"kind": "key", "shape": list(leaf.shape), "dtype": str(leaf.dtype)}
        if isinstance(leaf, jax.Array):
            spec["key_impl"] = str(jax.random.key_impl(leaf))
        return spec
    if isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        kind, dtype, shape = "jax", np.dtype(leaf.dtype), leaf.shape
    elif isinstance(leaf, np.ndarray | np.generic):
        kind, dtype, shape = "numpy", leaf.dtype, leaf.shape
    elif isinstance(leaf, bool | int | float | complex):
        if isinstance(leaf, int) and not isinstance(leaf, bool) and not -(2**63) <= leaf < 2**63:
            raise refuse(
                f"is the int {leaf}, beyond int64",
                "store it as a float, or as several ints",
            )
        kind, dtype, shape = "python", np.asarray(leaf).dtype, ()
    else:
        raise refuse(
            f"is a {type(leaf).__name__}, not an array or scalar",
            "keep only arrays and scalars in the tree (put other values in a separate file)",
        )
    if not storable(dtype):
        raise refuse(
            f"has dtype {dtype}, which orbax cannot store",
            "keep only bool, integer, floating and complex arrays (put strings and "
            "objects in a separate file)",
        )
    return {"kind": kind, "shape": list(shape), "dtype": str(dtype)}


def stored(leaf: Any, kind: str) -> Any:
    """The array orbax writes for a leaf."""
    if kind == "key":
        return jax.random.key_data(leaf)
    if kind == "python":
        return np.asarray(leaf)
    return leaf


def checksum(value: Any) -> int | None:
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return None  # multi-process: this process cannot see the whole array
    host = np.ascontiguousarray(np.asarray(value))
    return zlib.crc32(host.reshape(-1).view(np.uint8)) if host.size else 0


def nbytes(values: Iterable[Any]) -> int:
    return sum(np.size(v) * np.dtype(v.dtype).itemsize for v in values)


def in_threads(fn: Callable[[_T], _R], items: Sequence[_T], parallel: bool) -> list[_R]:
    """``[fn(item) for item in items]``, with ``parallel`` in a few threads
    (zlib and JAX's copies run outside the GIL), at most one item per thread
    in flight: ``fn`` may free what it has consumed, so that the whole data
    is never held twice."""
    workers = min(4, os.cpu_count() or 1)
    if not parallel or workers < 2 or len(items) < 2:
        return [fn(item) for item in items]
    results: list[Any] = [None] * len(items)
    pending: collections.deque = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for index, item in enumerate(items):
            pending.append((index, pool.submit(fn, item)))
            if len(pending) >= workers:
                done, future = pending.popleft()
                results[done] = future.result()
        for done, future in pending:
            results[done] = future.result()
    return results


def checksums(values: list[Any]) -> list[int | None]:
    """CRC32 of each array (in threads when there is much data)."""
    return in_threads(checksum, values, nbytes(values) >= PARALLEL_BYTES)


def nested(leaves: list[Leaf], values: list[Any]) -> dict[str, Any]:
    """The tree orbax writes: nested dicts keyed by the escaped keys."""
    tree: dict[str, Any] = {}
    for leaf, value in zip(leaves, values, strict=True):
        keys = [escape(k) for k in leaf.keys] or [escape("")]
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return tree


def lookup(tree: dict[str, Any], keys: list[str]) -> Any:
    """The value at ``keys`` in a tree made by :func:`nested`."""
    for key in [escape(k) for k in keys] or [escape("")]:
        tree = tree[key]
    return tree


def manifest_checksum(variables: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(variables, sort_keys=True).encode())


def fmt_spec(spec: dict[str, Any]) -> str:
    return f"shape {tuple(spec['shape'])} {spec['dtype']}"


def leaves_to_save(tree: Any, where: dict[str, Any]) -> list[Leaf]:
    """The leaves of a tree to save, each checked to be storable (a
    :class:`CheckpointTreeError` otherwise), with the array orbax writes."""
    flat, _ = flatten(tree, "the tree", where)
    leaves = []
    for name, keys, leaf in flat:
        spec = leaf_spec(leaf, name, "the tree", where)
        if isinstance(leaf, jax.Array) and leaf.is_deleted():
            raise CheckpointTreeError(
                **where,
                path=name,
                problem="is a deleted array (donated to a jitted function?)",
                fix="save the arrays the function returned, or do not donate them",
            )
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise CheckpointTreeError(
                **where,
                path=name,
                problem="is a jax.ShapeDtypeStruct, a shape without values",
                fix="save the arrays themselves (ShapeDtypeStructs belong in restore's `like`)",
            )
        value = stored(leaf, spec["kind"])
        if spec["kind"] == "key":
            spec["data_shape"], spec["data_dtype"] = list(value.shape), str(value.dtype)
        leaves.append(Leaf(name, keys, spec, value))
    return leaves


def build_manifest(step: int, leaves: list[Leaf]) -> dict[str, Any]:
    """The manifest of a save: every leaf's entry with its checksum."""
    variables = {}
    for leaf, crc in zip(leaves, checksums([leaf.value for leaf in leaves]), strict=True):
        variables[leaf.name] = {"keys": leaf.keys, **leaf.spec, "crc32": crc}
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "variables": variables,
        "crc32": manifest_checksum(variables),
    }


def check_entry(name: str, entry: Any, version: int) -> str | None:
    """Why a manifest entry is malformed, or None."""
    if not isinstance(entry, dict):
        return f"the entry of {name} is not an object"
    if entry.get("kind") not in KINDS:
        return f"{name} has no valid kind"
    shapes = ["shape", *(["data_shape"] if entry["kind"] == "key" else [])]
    for field in shapes:
        shape = entry.get(field)
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            return f"{name} has no valid {field}"
    dtypes = ["dtype", *(["data_dtype", "key_impl"] if entry["kind"] == "key" else [])]
    for field in dtypes:
        if not isinstance(entry.get(field), str):
            return f"{name} has no valid {field}"
    try:
        np.dtype(entry["data_dtype" if entry["kind"] == "key" else "dtype"])
    except TypeError:
        return f"{name} has an unknown dtype"
    crc = entry.get("crc32")
    if crc is not None and not (isinstance(crc, int) and 0 <= crc < 2**32):
        return f"{name} has no valid crc32"
    keys = entry.get("keys")
    if version >= 2 and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        return f"{name} has no valid keys"
    return None
