"""Selecting variables by scope: TF1's ``var_list=tf.trainable_variables(scope)``.

A params tree is keyed by the variables' scoped names, so a part of a model
is the sub-tree under its scope. :func:`select` and :func:`partition` cut a
tree by scope paths (and an optional predicate), :func:`merge` puts the
pieces back together, and :func:`labels` names the part each variable
belongs to, for ``optax.multi_transform``:

>>> params = {"generator": {"w": jnp.ones(2)}, "discriminator": {"w": jnp.zeros(2)}}
>>> js.labels(params, {"generator": "g", "discriminator": "d"})
{'discriminator': {'w': 'd'}, 'generator': {'w': 'g'}}

Scope paths match whole name components, as ``js.get_regularization_losses``
does: ``"enc"`` selects ``enc/w`` but not ``encoder/w`` (TF1's
``trainable_variables(scope)`` used a regex prefix, which matches both).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax

from jaxscope._src import errors
from jaxscope._src.scopes import VariableScope
from jaxscope._src.trees import check_name

Scope = str | VariableScope
Predicate = Callable[[str, Any], bool]
_NO_DEFAULT: Any = object()


def _key(entry: Any) -> Any:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return entry


def _leaves(tree: Any) -> list[tuple[tuple[Any, ...], str, Any]]:
    """``(keys, "a/b/v", leaf)`` for every leaf of ``tree``, in its order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for path, leaf in flat:
        keys = tuple(_key(entry) for entry in path)
        out.append((keys, "/".join(map(str, keys)), leaf))
    return out


def _build(items: list[tuple[tuple[Any, ...], Any]]) -> dict:
    tree: dict = {}
    for keys, leaf in items:
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = leaf
    return tree


def _scope_parts(scope: Scope, caller: str) -> tuple[str, ...]:
    name = scope.name if isinstance(scope, VariableScope) else scope
    if not isinstance(name, str):
        raise errors.ArgumentTypeError(
            function=caller,
            problem="a scope is a name such as 'discriminator' or 'model/encoder' (or a "
            f"js.VariableScope), got {type(scope).__name__}",
            fix="pass scope names as str",
        )
    name = name.rstrip("/")
    check_name(name, what="scope")
    return tuple(name.split("/"))


def _under(name_parts: tuple[str, ...], scope: tuple[str, ...]) -> bool:
    return name_parts[: len(scope)] == scope


def _check_found(caller: str, scopes: list[tuple[str, ...]], names: list[tuple[str, ...]]) -> None:
    """Every scope asked for must hold at least one variable of the tree."""
    for scope in scopes:
        if not any(_under(parts, scope) for parts in names):
            known = sorted({"/".join(p[:i]) for p in names for i in range(1, len(p) + 1)})
            wanted = "/".join(scope)
            near = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5) or known[:3]
            raise errors.SelectionError(function=caller, scope=wanted, nearest=near)


def partition(tree: Any, *scopes: Scope, predicate: Predicate | None = None) -> tuple[dict, dict]:
    """Splits ``tree`` into ``(selected, rest)``: :func:`select`'s tree and the
    variables it leaves out. ``js.merge(selected, rest)`` gives ``tree`` back.

    >>> params = {"gen": {"w": 1, "b": 2}, "disc": {"w": 3}}
    >>> js.partition(params, "gen")
    ({'gen': {'b': 2, 'w': 1}}, {'disc': {'w': 3}})
    >>> js.partition(params, predicate=lambda name, leaf: name.endswith("/w"))
    ({'disc': {'w': 3}, 'gen': {'w': 1}}, {'gen': {'b': 2}})

    Args:
        tree: a params (or state, or gradient) tree.
        *scopes: scope paths (``"discriminator"``, ``"model/encoder"``) or
            ``js.VariableScope`` objects; none selects every variable.
        predicate: ``predicate(name, leaf) -> bool``, called with each
            variable's full name (``"disc/dense/kernel"``) and value; a
            variable is selected when it lies under one of ``scopes`` (if
            any) and the predicate (if any) holds.

    Returns:
        ``(selected, rest)``, nested dicts keeping the full paths.

    Raises:
        SelectionError: a scope holds no variable of ``tree``.
    """
    wanted = [_scope_parts(scope, "js.select") for scope in scopes]
    leaves = _leaves(tree)
    _check_found("js.select", wanted, [tuple(map(str, keys)) for keys, _, _ in leaves])
    selected, rest = [], []
    for keys, name, leaf in leaves:
        parts = tuple(map(str, keys))
        hit = not wanted or any(_under(parts, scope) for scope in wanted)
        if hit and predicate is not None:
            hit = bool(predicate(name, leaf))
        (selected if hit else rest).append((keys, leaf))
    return _build(selected), _build(rest)


def select(tree: Any, *scopes: Scope, predicate: Predicate | None = None) -> dict:
    """The variables of ``tree`` under ``scopes`` (TF1's
    ``tf.trainable_variables(scope)``), as a nested dict with their full
    paths, so that trees selected apart can be :func:`merge`\\ d.

    >>> params = {"gen": {"dense": {"kernel": 1}}, "disc": {"dense": {"kernel": 2}}}
    >>> js.select(params, "disc")
    {'disc': {'dense': {'kernel': 2}}}
    >>> js.select(params, "gen", "disc", predicate=lambda name, leaf: leaf > 1)
    {'disc': {'dense': {'kernel': 2}}}

    Args and raising: as :func:`partition`, of which this is the first half.
    """
    return partition(tree, *scopes, predicate=predicate)[0]


def merge(*trees: Any) -> dict:
    """The union of trees holding different variables, such as the halves of
    :func:`partition` after each was updated by its own optimizer.

    >>> js.merge({"gen": {"w": 1}}, {"disc": {"w": 2}, "gen": {"b": 3}})
    {'gen': {'w': 1, 'b': 3}, 'disc': {'w': 2}}

    Raises:
        MergeConflictError: two trees hold the same variable, or one holds a
            variable where another holds a scope; the message names the path.
    """
    leaf_owner: dict[tuple[Any, ...], int] = {}
    scope_owner: dict[tuple[Any, ...], tuple[int, str]] = {}  # a scope: (tree, a leaf in it)
    items = []
    for index, tree in enumerate(trees):
        for keys, name, leaf in _leaves(tree):
            conflict = dict(path=name, tree=index)
            if keys in leaf_owner:
                raise errors.MergeConflictError(**conflict, other=leaf_owner[keys])
            if keys in scope_owner:
                other, inside = scope_owner[keys]
                raise errors.MergeConflictError(**conflict, other=other, inside=inside)
            above = next((keys[:i] for i in range(1, len(keys)) if keys[:i] in leaf_owner), None)
            if above is not None:
                raise errors.MergeConflictError(
                    **conflict, other=leaf_owner[above], above="/".join(map(str, above))
                )
            leaf_owner[keys] = index
            for i in range(1, len(keys)):
                scope_owner.setdefault(keys[:i], (index, name))
            items.append((keys, leaf))
    return _build(items)


def labels(tree: Any, scope_labels: Mapping[Scope, Hashable], default: Any = _NO_DEFAULT) -> Any:
    """A tree of the same structure as ``tree`` holding each variable's label:
    the label of the innermost scope in ``scope_labels`` that holds it, else
    ``default``. It is the ``param_labels`` of ``optax.multi_transform``, so
    each part of a model gets its own optimizer:

    >>> params = {"generator": {"w": jnp.ones(2)}, "discriminator": {"w": jnp.ones(2)}}
    >>> tx = optax.multi_transform(
    ...     {"train": optax.sgd(0.1), "frozen": optax.set_to_zero()},
    ...     js.labels(params, {"discriminator": "train"}, default="frozen"))
    >>> grads = jax.tree.map(jnp.ones_like, params)
    >>> updates, _ = tx.update(grads, tx.init(params), params)
    >>> js.flatten(optax.apply_updates(params, updates))
    {'discriminator/w': Array([0.9, 0.9], dtype=float32), 'generator/w': Array([1., 1.], dtype=float32)}

    Args:
        tree: the params tree (its structure is kept, leaf for leaf).
        scope_labels: ``{scope: label}``; nested scopes may carry their own
            labels (``{"gan": "a", "gan/disc": "b"}``: the innermost wins).
        default: the label of variables under none of the scopes; without
            it, such a variable is an error.

    Raises:
        SelectionError: a scope holds no variable of ``tree``, or a variable
            is under none of the scopes and no ``default`` is given.
    """
    wanted = [(_scope_parts(scope, "js.labels"), label) for scope, label in scope_labels.items()]
    leaves = _leaves(tree)
    _check_found("js.labels", [s for s, _ in wanted], [tuple(map(str, k)) for k, _, _ in leaves])
    by_depth = sorted(wanted, key=lambda item: -len(item[0]))

    def label_of(keys: tuple[str, ...]) -> Any:
        for scope, label in by_depth:
            if _under(keys, scope):
                return label
        return default

    if default is _NO_DEFAULT:
        unlabelled = [
            name for keys, name, _ in leaves if label_of(tuple(map(str, keys))) is default
        ]
        if unlabelled:
            raise errors.SelectionError(
                function="js.labels",
                unlabelled=unlabelled,
                scopes=["/".join(s) for s, _ in wanted],
            )

    def label_at(path: Any, leaf: Any) -> Any:
        del leaf
        return label_of(tuple(str(_key(entry)) for entry in path))

    return jax.tree_util.tree_map_with_path(label_at, tree)
