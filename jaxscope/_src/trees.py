"""Variable names and the nested dicts they index.

A full name ``"encoder/lstm/w"`` is the path ``tree["encoder"]["lstm"]["w"]``.
This module validates names, walks trees by name and converts between nested
trees and flat ``{"a/b/v": leaf}`` dicts (TF1's naming).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from jaxscope._src import errors

VALID_NAMES: set[str] = set()
"""Names :func:`check_name` found valid: a bounded cache, emptied when
full (so a model with more distinct names costs the same per name, with no
step), that the trace path tests before calling ``check_name``."""
_MAX_VALID_NAMES = 100_000


def check_name(name: str, what: str = "variable", scope: str = "") -> None:
    """Raise ``InvalidNameError`` unless ``name`` is a valid ``a/b/c`` path
    (``ArgumentTypeError`` if it is not a str, as TF1 raises ``TypeError``);
    ``scope`` is the scope it is relative to, for the message."""
    if type(name) is str and name in VALID_NAMES:
        return
    if not isinstance(name, str):
        raise errors.ArgumentTypeError(
            problem=f"invalid {what} name {name!r}{f' in scope {scope}' if scope else ''}: it must "
            f"be a str, got {type(name).__name__}",
            fix="use non-empty components joined by '/', such as 'encoder/lstm/kernel'",
        )
    problem = None
    if not name:
        problem = "is empty"
    elif ":" in name:
        problem = "contains ':' (TF1's ':0' output suffix is not part of a name)"
    elif name.startswith("/") or name.endswith("/"):
        problem = "starts or ends with '/'"
    elif "//" in name:
        problem = "has an empty component ('//')"
    if problem is not None:
        raise errors.InvalidNameError(name=name, problem=problem, kind=what, scope=scope)
    if len(VALID_NAMES) >= _MAX_VALID_NAMES:
        VALID_NAMES.clear()
    VALID_NAMES.add(name)


def join(scope_name: str, name: str) -> str:
    return f"{scope_name}/{name}" if scope_name else name


MISSING = object()
"""A ``default`` for :func:`lookup` that no tree can hold."""


def lookup(tree: Mapping | None, name: str, default: Any = None) -> Any:
    """The leaf at ``name`` in ``tree``, or ``default`` if the path is absent.

    Raises ``InvalidParamsError`` if the path runs into a leaf before its end
    or ends on a sub-tree.
    """
    node = tree
    for part in name.split("/"):
        if type(node) is not dict and not isinstance(node, Mapping):
            if node is None:
                return default
            _raise_leaf_on_path(tree, name)
        node = node.get(part, MISSING)
        if node is MISSING:
            return default
    leaf_type = type(node)
    if leaf_type is dict or (leaf_type not in _leaf_types and _is_mapping(node)):
        raise errors.InvalidParamsError(
            path=name,
            problem="is expected to be an array, but the tree holds a sub-tree there with keys "
            f"{sorted(map(str, node))[:8]}",
            fix="pass the params tree that init returned, or rename the variable",
        )
    return node


def indexed_subtree(index: dict[str, dict], path: str) -> dict | None:
    """The sub-tree at ``path`` (a scope name), through ``index``: a cache
    of the sub-trees found so far by path, holding the root at ``""``. A
    miss walks down from the nearest cached ancestor and caches what it
    passes, so a name's lookup costs one component however deep its scope.
    ``None`` where the path is absent or runs into anything but a ``dict``
    (the caller falls back to :func:`lookup`, which says what is wrong)."""
    node = index.get(path)
    if node is not None or not path:
        return node
    missing = [path]
    parent = path.rpartition("/")[0]
    while (node := index.get(parent)) is None and parent:
        missing.append(parent)
        parent = parent.rpartition("/")[0]
    if node is None:
        return None
    for path in reversed(missing):
        node = node.get(path[path.rfind("/") + 1 :])
        if type(node) is not dict:
            return None
        index[path] = node
    return node


# Types seen not to be Mappings: an array leaf skips the abstract-class check.
_leaf_types: set[type] = set()


def _is_mapping(node: Any) -> bool:
    if isinstance(node, Mapping):
        return True
    _leaf_types.add(type(node))
    return False


def _raise_leaf_on_path(tree: Mapping, name: str) -> None:
    parts = name.split("/")
    node = tree
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping):
            raise errors.InvalidParamsError(
                path=name,
                problem=f"is looked up where the tree should hold a sub-tree at "
                f"'{'/'.join(parts[:depth])}', but it holds a leaf of type {type(node).__name__}",
                fix="pass the params tree that init returned",
            )
        node = node[part]


def flatten(tree: Mapping) -> dict[str, Any]:
    """Flattens a nested params tree to ``{"a/b/v": leaf}`` (TF1 names).

    Every ``Mapping`` is a sub-tree (a ``dict``, a ``FrozenDict``, a
    ``MappingProxyType``); empty sub-trees hold no names. Two paths that give
    one name (a key ``"a/b"`` beside ``{"a": {"b": ...}}``) are a
    ``NameConflictError``, never a dropped leaf.

    >>> js.flatten({"dense": {"w": 1, "b": 2}})
    {'dense/w': 1, 'dense/b': 2}
    """
    flat: dict[str, Any] = {}
    stack = [("", iter(tree.items()))]  # depth-first, in key order, without recursion
    while stack:
        prefix, items = stack[-1]
        for key, child in items:
            if not isinstance(key, str):
                raise errors.ArgumentTypeError(
                    function="js.flatten",
                    problem=f"the tree has the key {key!r} ({type(key).__name__})"
                    f"{f' under {prefix}' if prefix else ''}, but names are made of str keys",
                    fix="use str keys",
                )
            name = f"{prefix}/{key}" if prefix else key
            if isinstance(child, Mapping):
                stack.append((name, iter(child.items())))
                break
            if name in flat:
                raise errors.NameConflictError(
                    path=name,
                    function="js.flatten",
                    problem=f"the tree holds two leaves named {name} (a key with '/' in it beside nested "
                    "keys of the same path)",
                    fix="keep one of them, or nest the key with '/' (js.unflatten does)",
                )
            flat[name] = child
        else:
            stack.pop()
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict:
    """Inverse of :func:`flatten`: ``{"a/b/v": leaf}`` to a nested tree.

    >>> js.unflatten({"dense/w": 1, "dense/b": 2})
    {'dense': {'w': 1, 'b': 2}}
    """
    tree: dict = {}
    subtrees: set[int] = set()  # ids of the dicts this call made
    for name, leaf in flat.items():
        check_name(name)
        node = tree
        *scopes, last = name.split("/")
        for depth, part in enumerate(scopes):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                subtrees.add(id(child))
            elif id(child) not in subtrees:
                prefix = "/".join(scopes[: depth + 1])
                raise errors.NameConflictError(
                    path=name,
                    variable=prefix,
                    function="js.unflatten",
                    problem=f"{prefix} is a variable and also a scope holding {name}; a nested tree "
                    "cannot hold both",
                )
            node = child
        if last in node:
            raise errors.NameConflictError(
                path=name,
                function="js.unflatten",
                problem=f"{name} is a variable and also a scope holding variables; a nested tree "
                "cannot hold both",
            )
        node[last] = leaf
    return tree


def flat_keys(trees: list[Mapping | None], n: int = 3) -> list[str]:
    """Up to ``n`` keys with ``/`` in them, anywhere in ``trees``: the mark of
    a flat tree (from :func:`flatten`, or an ``.npz`` file) given where a
    nested one belongs."""
    found: list[str] = []
    stack = [tree for tree in trees if isinstance(tree, Mapping)]
    while stack and len(found) < n:
        node = stack.pop()
        for key, child in node.items():
            if isinstance(key, str) and "/" in key:
                found.append(key)
            elif isinstance(child, Mapping):
                stack.append(child)
    return found[:n]


def nearest_names(name: str, trees: list[Mapping | None], n: int = 3) -> list[str]:
    """Names in ``trees`` closest to ``name``, for error messages."""
    names: list[str] = []
    stack = [("", tree) for tree in trees if isinstance(tree, Mapping)]
    while stack:  # never raises: it runs while an error is being reported
        prefix, node = stack.pop()
        for key, child in node.items():
            path = f"{prefix}/{key}" if prefix else str(key)
            if isinstance(child, Mapping):
                stack.append((path, child))
            else:
                names.append(path)
    return difflib.get_close_matches(name, names, n=n, cutoff=0.4) or sorted(names)[:n]


def set_path(tree: dict, name: str, value: Any) -> None:
    """Insert ``value`` at ``name`` in the nested dict ``tree`` (in place)."""
    parts = name.split("/")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def replace_paths(tree: Mapping, updates: Mapping[str, Any]) -> dict:
    """A copy of ``tree`` with the leaves at the given names replaced; only the
    dicts along the updated paths are copied."""
    out = dict(tree)
    for name, value in updates.items():
        parts = name.split("/")
        node = out
        for part in parts[:-1]:
            node[part] = dict(node[part])
            node = node[part]
        node[parts[-1]] = value
    return out
