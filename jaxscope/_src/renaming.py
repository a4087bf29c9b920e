"""Named arrays into a params tree, by ordered regex rules, checked against a
template: the engine behind :func:`jaxscope.load_tf1_checkpoint` and
:func:`jaxscope.from_haiku`.

A loader hands over its names (checkpoint entries, Haiku's
``module/~/sub/w``), a way to read each array, and a :class:`Source` saying
how its entries are called in messages and which typed errors it raises.
The engine drops the names a ``skip`` pattern matches, renames the rest by
the ``name_map`` rules, checks that the new names form a params tree, and
either loads every entry by its new name or matches the entries against the
template ``like`` (shape, dtype kind, nothing missing, nothing unused),
returning the tree and a :class:`LoadReport`. No array is read before every
check has passed, and nothing the caller passed is changed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxscope._src import errors, trees

NameMap = Mapping[str, str | None] | Sequence[tuple[str, str | None]]
Rules = list[tuple[re.Pattern, str | None]]


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a loader (:func:`jaxscope.load_tf1_checkpoint`,
    :func:`jaxscope.from_haiku`) did with each name.

    Attributes:
        loaded: model path -> the source name loaded into it.
        skipped: source names dropped by a ``skip`` pattern or by a
            ``name_map`` rule with replacement ``None``.
        unused: source names (kept, renamed) that no model path takes;
            only with ``like``.
        missing: model paths that no source name maps to; only with
            ``like``.
        renamed: source name -> model path, for every kept entry.
        mismatched: ``(model path, source name, why)`` for entries of
            another shape or dtype kind than the model's.
        cast: model path -> ``(source dtype, loaded dtype)`` where they
            differ.
    """

    loaded: dict[str, str]
    skipped: tuple[str, ...]
    unused: tuple[str, ...]
    missing: tuple[str, ...]
    renamed: dict[str, str]
    mismatched: tuple[tuple[str, str, str], ...] = ()
    cast: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every model path was loaded and every entry used."""
        return not (self.unused or self.missing or self.mismatched)

    def __str__(self) -> str:
        lines = [
            f"loaded {len(self.loaded)}, skipped {len(self.skipped)}, unused "
            f"{len(self.unused)}, missing {len(self.missing)}, mismatched "
            f"{len(self.mismatched)}, cast {len(self.cast)}"
        ]
        lines += [f"  missing: {p}" for p in self.missing]
        lines += [f"  unused:  {_renamed(n, self.renamed[n])}" for n in self.unused]
        lines += [f"  mismatched: {p} <- {n}: {why}" for p, n, why in self.mismatched]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Source:
    """How a loader's entries are named in messages, and its typed errors.

    Attributes:
        entry: one entry, as a sentence names it (``checkpoint entry``).
        entries: several of them (``checkpoint entries``).
        side: the source's side of a comparison (``checkpoint`` shape).
        where: appended to an entry's name (`` in ckpt/model.ckpt-1000``).
        below_hint: a hint for an entry that would sit below another.
        name_map_error: raised for rules and the names they make.
        mismatch_error: raised when the entries do not fit ``like``, with the
            report, the nearest names, a suggested rule, and ``mismatch_fields``.
        mismatch_fields: the loader's own arguments of ``mismatch_error``.
    """

    entry: str
    entries: str
    side: str
    where: str
    name_map_error: type[errors.ScopeError]
    mismatch_error: type[errors.ScopeError]
    below_hint: str = ""
    mismatch_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Entry(NamedTuple):
    """A source entry as the checks see it, before its array is read."""

    shape: tuple[int, ...]
    dtype: np.dtype
    dtype_name: str


@dataclasses.dataclass
class Plan:
    """What becomes of each source name, decided before anything is read."""

    skipped: list[str]
    renamed: dict[str, str]  # source name -> model path
    taken: dict[str, str]  # model path -> source name


_RULE_FORMAT = (
    "name_map is a list of (pattern, replacement) pairs, or a dict {pattern: replacement}, "
    "of regex strings; a replacement of None drops the names its pattern matches"
)


def _compile(pattern: Any, what: str, error: type[errors.ScopeError]) -> re.Pattern:
    if not isinstance(pattern, str):
        raise error(
            function=what,
            problem=f"the pattern {pattern!r} ({type(pattern).__name__}) is not a regex string",
            fix=_RULE_FORMAT,
        )
    try:
        return re.compile(pattern)
    except re.error as e:
        raise error(
            function=what,
            problem=f"{pattern!r} is not a valid regex ({e})",
            fix="correct it (re.escape() matches a name literally)",
        ) from None


def compile_rules(name_map: NameMap | None, error: type[errors.ScopeError]) -> Rules:
    """The rules of ``name_map``, checked: every pattern a valid regex, every
    replacement a string whose group references the pattern has, or None.
    A malformed map is an ``error``."""
    if name_map is None:
        return []
    if isinstance(name_map, str | bytes) or not isinstance(name_map, Mapping | Sequence):
        raise error(
            argument="name_map",
            problem=f"must be a list of pairs or a dict, got {type(name_map).__name__} "
            f"{name_map!r}",
            fix=f"{_RULE_FORMAT}, e.g. [(r'^model/', '')]",
        )
    pairs = list(name_map.items()) if isinstance(name_map, Mapping) else list(name_map)
    rules = []
    for index, rule in enumerate(pairs):
        what = f"name_map rule {index}"
        if isinstance(rule, str | bytes) or not (isinstance(rule, Sequence) and len(rule) == 2):
            raise error(
                argument=what,
                problem=f"is {rule!r}, not a (pattern, replacement) pair",
                fix=_RULE_FORMAT,
            )
        pattern, replacement = _compile(rule[0], what, error), rule[1]
        if replacement is not None:
            if not isinstance(replacement, str):
                raise error(
                    function=f"{what} ({rule[0]!r})",
                    problem=f"the replacement {replacement!r} ({type(replacement).__name__}) "
                    "is not a string or None",
                    fix=_RULE_FORMAT,
                )
            try:
                pattern.sub(replacement, "")  # parses the template: group references
            except (re.error, IndexError) as e:
                raise error(
                    function=f"{what} ({rule[0]!r}, {replacement!r})",
                    problem=f"the replacement is invalid for this pattern ({e})",
                    fix="refer only to the pattern's groups (\\1, \\g<name>), and write a "
                    "literal backslash as \\\\",
                ) from None
        rules.append((pattern, replacement))
    return rules


def compile_skip(skip: Iterable[str], error: type[errors.ScopeError]) -> tuple[re.Pattern, ...]:
    """The ``skip`` patterns, compiled; one string (not a sequence) is an ``error``."""
    if isinstance(skip, str | bytes) or not isinstance(skip, Iterable):
        raise error(
            argument="skip",
            problem=f"must be a sequence of regex patterns, got {skip!r}",
            fix=f"wrap a single pattern in a tuple, skip=({skip!r},); skip=() keeps every entry",
        )
    return tuple(_compile(pattern, "skip", error) for pattern in skip)


def rename(name: str, rules: Rules) -> str | None:
    """``name`` after every rule in turn (``re.sub``); ``None`` if a rule
    with replacement ``None`` matches it."""
    for pattern, replacement in rules:
        if replacement is None:
            if pattern.search(name):
                return None
        else:
            name = pattern.sub(replacement, name)
    return name


def skipped(name: str, patterns: tuple[re.Pattern, ...]) -> bool:
    return any(pattern.search(name) for pattern in patterns)


def dtype_arg(dtype: Any, error: type[errors.ScopeError]) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise error(
            argument="dtype",
            problem=f"must be a floating dtype such as jnp.bfloat16 or None, got {dtype!r}",
            fix="pass a dtype (jnp.float32, jnp.bfloat16, ...), or None to keep each entry's",
        ) from None


def flat_templates(like: Any, error: type[errors.ScopeError]) -> tuple[list[dict[str, Any]], bool]:
    """The template trees, flattened, and whether ``like`` was one tree."""
    if isinstance(like, Mapping):
        return [trees.flatten(like)], True
    if isinstance(like, tuple | list) and like and all(isinstance(t, Mapping) for t in like):
        return [trees.flatten(t) for t in like], False
    raise error(
        argument="like",
        problem="must be a params tree (a nested dict of arrays or jax.ShapeDtypeStruct, "
        "e.g. jax.eval_shape(f.init, rng, x)) or a tuple of trees such as (params, state); "
        f"got {type(like).__name__}",
        fix="pass the model's params (or their jax.eval_shape), or like=None to load every entry",
    )


def kind(dtype: np.dtype) -> str:
    """The dtype's kind: a cast within one kind is allowed, across kinds not."""
    if jnp.issubdtype(dtype, jnp.floating):
        return "float"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    if jnp.issubdtype(dtype, jnp.integer):
        return "int"
    if dtype == np.bool_:
        return "bool"
    return "other"


def plan(
    names: Iterable[str], rules: Rules, skip_patterns: tuple[re.Pattern, ...], source: Source
) -> Plan:
    """Skips and renames ``names``; the new names must form a params tree."""
    result = Plan([], {}, {})
    for name in names:
        new = None if skipped(name, skip_patterns) else rename(name, rules)
        if new is None:
            result.skipped.append(name)
            continue
        _check_renamed(name, new, result.taken, source)
        result.renamed[name] = new
        result.taken[new] = name
    _check_prefixes(result.taken, source)
    return result


def _check_renamed(name: str, new: str, taken: dict[str, str], source: Source) -> None:
    try:
        trees.check_name(new)
    except errors.InvalidNameError as e:
        raise source.name_map_error(
            problem=f"{source.entry} {name}{source.where} is renamed to {new!r}, which is not "
            f"a valid variable name ({e})",
            fix="change the name_map rules",
        ) from None
    if new in taken:
        raise source.name_map_error(
            problem=f"{source.entries} {taken[new]} and {name}{source.where} are both renamed "
            f"to {new}",
            fix="change the name_map rules so that each model path gets one entry, or drop "
            "one of them with a (pattern, None) rule",
        )


def _check_prefixes(taken: dict[str, str], source: Source) -> None:
    """TF1 allowed ``a/x`` beside ``a/x/y``; a nested tree cannot hold both."""
    for new, name in taken.items():
        parts = new.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in taken:
                raise source.name_map_error(
                    problem=f"{source.entry} {taken[prefix]}{source.where} (model path "
                    f"{prefix}) is a variable, and entry {name} (model path {new}) would be "
                    "below it; a nested params tree cannot hold both",
                    fix=f"rename one of them with name_map{source.below_hint}",
                )


def load_all(
    plan: Plan,
    entries: Mapping[str, Entry],
    read: Callable[[str], Any],
    dtype: np.dtype | None,
) -> tuple[dict, LoadReport]:
    """Every kept entry at its new name: floats keep their dtype (or take
    ``dtype``), canonicalized as JAX does (float64 is float32 without x64)."""
    flat = {}
    cast = {}
    for new, name in plan.taken.items():
        stored = entries[name].dtype
        want = dtype if dtype is not None and kind(stored) == "float" else stored
        want = jax.dtypes.canonicalize_dtype(want)
        if want != stored:
            cast[new] = (str(stored), str(want))
        flat[new] = jnp.asarray(read(name).astype(want))
    report = LoadReport(
        loaded=dict(plan.taken),
        skipped=tuple(plan.skipped),
        unused=(),
        missing=(),
        renamed=plan.renamed,
        cast=cast,
    )
    return trees.unflatten(flat), report


def load_like(
    plan: Plan,
    entries: Mapping[str, Entry],
    read: Callable[[str], Any],
    like: Any,
    templates: list[dict[str, Any]],
    single: bool,
    *,
    strict: bool,
    source: Source,
) -> tuple[Any, LoadReport]:
    """The entries matched against the templates: every model path needs
    exactly one entry of its shape and dtype kind (cast to its dtype, placed
    with its sharding); ``strict`` also refuses missing paths and unused
    entries. A mismatch raises ``source.mismatch_error`` before any read."""
    owners: dict[str, list[int]] = {}  # model path -> the templates holding it
    for index, flat_template in enumerate(templates):
        for model_path in flat_template:
            owners.setdefault(model_path, []).append(index)
    missing = [p for p in owners if p not in plan.taken]
    unused = [name for name, new in plan.renamed.items() if new not in owners]
    mismatched, cast = _compare(plan, entries, templates, owners, source.side)
    report = LoadReport(
        loaded={p: n for p, n in plan.taken.items() if p in owners},
        skipped=tuple(plan.skipped),
        unused=tuple(unused),
        missing=tuple(missing),
        renamed=plan.renamed,
        mismatched=tuple(mismatched),
        cast=cast,
    )
    if mismatched or (strict and (missing or unused)):
        nearest, suggestion = _nearest_entries(report, templates, entries)
        raise source.mismatch_error(
            report=report, nearest=nearest, suggestion=suggestion, **source.mismatch_fields
        )

    result = _read_into(templates, owners, report.loaded, read)
    return (result[0] if single else type(like)(result)), report


def _compare(
    plan: Plan,
    entries: Mapping[str, Entry],
    templates: list[dict[str, Any]],
    owners: dict[str, list[int]],
    side: str,
) -> tuple[list[tuple[str, str, str]], dict[str, tuple[str, str]]]:
    """``(mismatched, cast)``: the taken entries whose shape or dtype kind
    differs from their model variable's (model path, entry, why), and those
    of the same kind but another dtype (model path -> (from, to))."""
    mismatched: list[tuple[str, str, str]] = []
    cast = {}
    for model_path, name in plan.taken.items():
        entry = entries[name]
        for index in owners.get(model_path, ()):
            template = templates[index][model_path]
            want_shape = tuple(np.shape(template))
            want = np.dtype(jnp.result_type(template))
            if entry.shape != want_shape:
                why = f"{side} shape {entry.shape}, model shape {want_shape}"
            elif kind(entry.dtype) != kind(want):
                why = f"{side} dtype {entry.dtype_name}, model dtype {want}"
            else:
                if entry.dtype != want:
                    cast[model_path] = (str(entry.dtype), str(want))
                continue
            if (model_path, name, why) not in mismatched:
                mismatched.append((model_path, name, why))
    return mismatched, cast


def _read_into(
    templates: list[dict[str, Any]],
    owners: dict[str, list[int]],
    loaded: Mapping[str, str],
    read: Callable[[str], Any],
) -> list[Any]:
    """The templates' trees with each loaded entry read once, cast to its
    variable's dtype and placed with its sharding."""
    outs = [dict(flat_template) for flat_template in templates]
    for model_path, name in loaded.items():
        value = read(name)
        for index in owners[model_path]:
            template = templates[index][model_path]
            cast_value = value.astype(np.dtype(jnp.result_type(template)))
            sharding = getattr(template, "sharding", None)
            outs[index][model_path] = (
                jax.device_put(cast_value, sharding)
                if sharding is not None
                else jnp.asarray(cast_value)
            )
    return [trees.unflatten(flat) for flat in outs]


def suggest_rule(source_name: str, model_path: str) -> tuple[str, str] | None:
    """A ``name_map`` rule turning ``source_name`` into ``model_path``:
    their differing prefixes, keeping the longest common tail."""
    a, b = source_name.split("/"), model_path.split("/")
    common = 0
    while common < min(len(a), len(b)) and a[-1 - common] == b[-1 - common]:
        common += 1
    if common == 0:
        return None
    head_a, head_b = a[: len(a) - common], b[: len(b) - common]
    prefix_a = "".join(part + "/" for part in head_a)
    prefix_b = "".join(part + "/" for part in head_b)
    return "^" + re.escape(prefix_a), prefix_b


def _nearest(path: str, shape: tuple, candidates: dict[str, tuple]) -> list[str]:
    """Renamed source names close to ``path``, those of its shape first."""
    same_shape = [name for name, s in candidates.items() if s == shape]
    for pool in (same_shape, list(candidates)):
        found = difflib.get_close_matches(path, pool, n=3, cutoff=0.3)
        if found:
            return found
    return []


def _nearest_entries(
    report: LoadReport, templates: list[dict[str, Any]], entries: Mapping[str, Entry]
) -> tuple[dict[str, list[str]], tuple[str, str] | None]:
    """For each missing model path, the nearest unused source names; and a
    ``name_map`` rule that would map the first path to its nearest name."""
    unused_shapes = {report.renamed[n]: entries[n].shape for n in report.unused}
    back = {report.renamed[n]: n for n in report.unused}
    nearest: dict[str, list[str]] = {}
    suggestion = None
    for model_path in report.missing:
        template = next(t[model_path] for t in templates if model_path in t)
        names = [back[n] for n in _nearest(model_path, tuple(np.shape(template)), unused_shapes)]
        nearest[model_path] = names
        if suggestion is None and names:
            suggestion = suggest_rule(report.renamed[names[0]], model_path)
    return nearest, suggestion


def _renamed(name: str, new: str) -> str:
    return name if name == new else f"{name} -> {new}"
