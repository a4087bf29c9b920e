"""Haiku params into params trees; documented in :mod:`jaxscope.haiku_interop`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np

from jaxscope._src import errors, renaming, trees
from jaxscope._src.errors import HaikuArgumentError, HaikuMismatchError, HaikuNameMapError

DEFAULT_NAME_MAP: tuple[tuple[str, str], ...] = ((r"(?:^|(?<=/))~/", ""),)
"""The rules :func:`from_haiku` uses when ``name_map`` is None: every ``~``
component of a Haiku name is dropped (``mlp/~/linear_0/w`` ->
``mlp/linear_0/w``, ``~/count`` -> ``count``)."""


def from_haiku(
    hk_params: Mapping | tuple[Mapping, ...] | list[Mapping],
    name_map: renaming.NameMap | None = None,
    *,
    like: Any = None,
    skip: Iterable[str] = (),
    dtype: Any = None,
    strict: bool = True,
    return_report: bool = False,
) -> Any:
    """Converts Haiku params (or state) into a jaxscope params tree.

    Each leaf of ``hk_params`` becomes the variable at its renamed Haiku
    name (see the module documentation for the rules): with the default
    ``name_map``, Haiku's ``params["mlp/~/linear_0"]["w"]`` is jaxscope's
    ``params["mlp"]["linear_0"]["w"]``.

    Args:
        hk_params: the dict Haiku's ``init`` returned (``{module: {name:
            array}}``), or a tuple of such dicts, such as ``(params, state)``.
        name_map: ordered regex rules ``(pattern, replacement)`` on the Haiku
            names, as a list of pairs or a dict; each applies in turn as
            ``re.sub``; a replacement ``None`` drops the matching names.
            Default: :data:`DEFAULT_NAME_MAP` (drop ``~`` components).
        like: the model's params tree, ``(params, state)``, or their
            ``jax.eval_shape``: every path must get exactly one Haiku
            parameter of the same shape and dtype kind, cast to the
            template's dtype (and placed with its sharding, when it has
            one). The result has the template's structure.
        skip: regex patterns of Haiku names to drop, matched before
            ``name_map`` (such as the ``hidden`` and ``counter`` state of
            Haiku's moving averages).
        dtype: without ``like``, the dtype for floating parameters (default:
            their own; float64 is float32 unless x64 is enabled).
        strict: with ``like``, raise on missing model paths and unused Haiku
            names. ``False`` converts what matches and leaves the template's
            leaf where nothing does. Shape and dtype-kind mismatches raise
            either way.
        return_report: also return a :class:`jaxscope.haiku_interop.LoadReport`.

    Returns:
        The params tree (a tuple of trees if ``like`` is a tuple), or
        ``(tree, report)`` with ``return_report=True``.

    Raises:
        HaikuArgumentError: ``hk_params``, ``like`` or ``dtype`` is malformed.
        HaikuNameMapError: ``name_map`` or ``skip`` is malformed, or the
            names it makes do not form a params tree.
        HaikuMismatchError: with ``like``, the Haiku params do not match;
            the message names the model paths and Haiku names, and suggests
            a rule.

    >>> def model(x):
    ...     with js.variable_scope("mlp/linear_0"):
    ...         w = js.get_variable("w", [x.shape[-1], 2])
    ...         return x @ w + js.get_variable("b", [2])
    >>> f = js.transform(model)
    >>> x = jnp.ones((1, 3))
    >>> hk_params = {"mlp/~/linear_0": {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}}
    >>> params = js.from_haiku(hk_params, like=jax.eval_shape(f.init, 0, x))
    >>> f.apply(params, x).tolist()
    [[4.0, 4.0]]
    """
    # Every argument is checked before a leaf is read.
    rules = renaming.compile_rules(
        DEFAULT_NAME_MAP if name_map is None else name_map, HaikuNameMapError
    )
    skip_patterns = renaming.compile_skip(skip, HaikuNameMapError)
    dtype = renaming.dtype_arg(dtype, HaikuArgumentError)
    templates, single = (
        renaming.flat_templates(like, HaikuArgumentError) if like is not None else ([], True)
    )
    leaves = _haiku_leaves(hk_params)
    source = renaming.Source(
        entry="Haiku parameter",
        entries="Haiku parameters",
        side="Haiku",
        where="",
        name_map_error=HaikuNameMapError,
        mismatch_error=HaikuMismatchError,
    )
    plan = renaming.plan(leaves, rules, skip_patterns, source)
    entries = {name: _entry(name, leaves[name]) for name in plan.renamed}
    if like is None:
        tree, report = renaming.load_all(plan, entries, leaves.__getitem__, dtype)
    else:
        tildes_kept = any("~" in new.split("/") for new in plan.renamed.values())
        source = dataclasses.replace(
            source,
            mismatch_fields={
                "name_map_given": name_map is not None,
                "drop_tildes_rule": DEFAULT_NAME_MAP[0] if tildes_kept else None,
            },
        )
        tree, report = renaming.load_like(
            plan, entries, leaves.__getitem__, like, templates, single, strict=strict, source=source
        )
    return (tree, report) if return_report else tree


def _haiku_leaves(hk_params: Any) -> dict[str, Any]:
    """Haiku name -> leaf, over one dict or a tuple of them."""
    dicts = hk_params if isinstance(hk_params, tuple | list) else (hk_params,)
    if not dicts or not all(isinstance(d, Mapping) for d in dicts):
        raise HaikuArgumentError(
            argument="hk_params",
            problem="must be the dict Haiku's init returned ({module: {name: array}}), or a "
            f"tuple of such dicts such as (params, state); got {type(hk_params).__name__}",
            fix="params = hk.transform(f).init(rng, x); js.from_haiku(params, like=...)",
        )
    leaves: dict[str, Any] = {}
    for index, tree in enumerate(dicts):
        try:
            flat = trees.flatten(tree)
        except errors.ScopeError as e:
            raise HaikuArgumentError(
                argument="hk_params",
                problem=f"cannot be read as names: {e}",
                fix="pass the dicts Haiku's init returned, with str keys",
            ) from None
        for name, leaf in flat.items():
            if name in leaves:
                raise HaikuArgumentError(
                    path=name,
                    problem=f"is in two of the dicts given (the second in dict {index}), so "
                    "which to convert is unclear",
                    fix="pass each name once",
                )
            leaves[name] = leaf
    return leaves


def _entry(name: str, leaf: Any) -> renaming.Entry:
    """What the checks need of a kept leaf; anything but a numeric array is
    an error, raised before any leaf is converted."""
    drop = f"skip=({'^' + re.escape(name) + '$'!r},)"
    if not isinstance(leaf, jax.Array | np.ndarray | np.generic):
        raise HaikuArgumentError(
            path=name,
            problem=f"is a {type(leaf).__name__}, not an array",
            fix=f"pass the arrays Haiku's init (or training) returned, or drop this name with {drop}",
        )
    try:
        dtype = np.dtype(leaf.dtype)
    except TypeError:  # JAX's extended dtypes, such as PRNG keys
        dtype = None
    if dtype is None or renaming.kind(dtype) == "other":
        raise HaikuArgumentError(
            path=name,
            problem=f"holds {leaf.dtype} values, not numbers, which a params tree cannot take",
            fix=f"drop it with {drop}",
        )
    return renaming.Entry(tuple(leaf.shape), dtype, dtype.name)
