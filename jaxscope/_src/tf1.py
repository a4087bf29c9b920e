"""Loading TF1 Saver checkpoints; documented in :mod:`jaxscope.tf1`."""

from __future__ import annotations

import dataclasses
import difflib
import glob
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscope._src import errors, trees
from jaxscope._src.errors import (
    TF1ArgumentError,
    TF1CheckpointCorruptError,
    TF1CheckpointMismatchError,
    TF1CheckpointNotFoundError,
    TF1DependencyError,
    TF1NameMapError,
    TF1UnsupportedEntryError,
    describe_cause,
)

_SLOTS = (
    "Adam|Adagrad|AdagradDA|Adadelta|Ftrl|Momentum|RMSProp|ProximalAdagrad"
    "|ProximalGradientDescent|LazyAdam|adam_m|adam_v|adafactor_v|adafactor_vr|adafactor_vc"
)

DEFAULT_SKIP: tuple[str, ...] = (
    r"(^|/)global_step$",
    r"(^|/)beta[12]_power(_\d+)?$",
    rf"/({_SLOTS})(_\d+)?$",
    r"/ExponentialMovingAverage(_\d+)?$",
    r"(^|/)(current_loss_scale|good_steps)$",
    r"^_CHECKPOINTABLE_OBJECT_GRAPH$",
)
"""Patterns (``re.search``) of TF1 checkpoint names that are training
bookkeeping rather than model variables: the global step, Adam's power
accumulators, optimizer slot variables (``<var>/<Optimizer>`` and numbered
``<var>/<Optimizer>_1``, …), moving-average shadows, loss-scale counters."""

NameMap = Mapping[str, str | None] | Sequence[tuple[str, str | None]]
_MAX_LISTED = 12


@dataclasses.dataclass(frozen=True)
class TF1LoadReport:
    """What :func:`load_tf1_checkpoint` did with each name.

    Attributes:
        loaded: model path -> the checkpoint name loaded into it.
        skipped: checkpoint names dropped as bookkeeping (``skip``) or by a
            ``name_map`` rule with replacement ``None``.
        unused: checkpoint names (kept, renamed) that no model path takes;
            only with ``like``.
        missing: model paths that no checkpoint name maps to; only with
            ``like``.
        renamed: checkpoint name -> model path, for every kept entry.
        mismatched: ``(model path, checkpoint name, why)`` for entries of
            another shape or dtype kind than the model's.
        cast: model path -> ``(checkpoint dtype, loaded dtype)`` where they
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


def _import_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError as e:
        raise TF1DependencyError(
            "js.load_tf1_checkpoint reads TF1 checkpoints with TensorFlow, an optional "
            "dependency of jaxscope that is not installed. Fix: pip install "
            "'jaxscope[tf]' (or pip install tensorflow-cpu)."
        ) from e
    return tf


_RULE_FORMAT = (
    "name_map is a list of (pattern, replacement) pairs, or a dict {pattern: replacement}, "
    "of regex strings; a replacement of None drops the names its pattern matches"
)


def _compile(pattern: Any, what: str) -> re.Pattern:
    if not isinstance(pattern, str):
        raise TF1NameMapError(
            f"{what}: the pattern {pattern!r} ({type(pattern).__name__}) is not a regex string. "
            f"Fix: {_RULE_FORMAT}."
        )
    try:
        return re.compile(pattern)
    except re.error as e:
        raise TF1NameMapError(
            f"{what}: {pattern!r} is not a valid regex ({e}). Fix: correct it (re.escape() "
            "matches a name literally)."
        ) from None


def _rules(name_map: NameMap | None) -> list[tuple[re.Pattern, str | None]]:
    """The rules of ``name_map``, checked: every pattern a valid regex, every
    replacement a string whose group references the pattern has, or None."""
    if name_map is None:
        return []
    if isinstance(name_map, str | bytes) or not isinstance(name_map, Mapping | Sequence):
        raise TF1NameMapError(
            f"name_map must be a list of pairs or a dict, got {type(name_map).__name__} "
            f"{name_map!r}. Fix: {_RULE_FORMAT}, e.g. [(r'^model/', '')]."
        )
    pairs = list(name_map.items()) if isinstance(name_map, Mapping) else list(name_map)
    rules = []
    for index, rule in enumerate(pairs):
        what = f"name_map rule {index}"
        if isinstance(rule, str | bytes) or not (isinstance(rule, Sequence) and len(rule) == 2):
            raise TF1NameMapError(
                f"{what} is {rule!r}, not a (pattern, replacement) pair. Fix: {_RULE_FORMAT}."
            )
        pattern, replacement = _compile(rule[0], what), rule[1]
        if replacement is not None:
            if not isinstance(replacement, str):
                raise TF1NameMapError(
                    f"{what} ({rule[0]!r}): the replacement {replacement!r} "
                    f"({type(replacement).__name__}) is not a string or None. Fix: {_RULE_FORMAT}."
                )
            try:
                pattern.sub(replacement, "")  # parses the template: group references
            except (re.error, IndexError) as e:
                raise TF1NameMapError(
                    f"{what} ({rule[0]!r}, {replacement!r}): the replacement is invalid for "
                    f"this pattern ({e}). Fix: refer only to the pattern's groups (\\1, "
                    "\\g<name>), and write a literal backslash as \\\\."
                ) from None
        rules.append((pattern, replacement))
    return rules


def _skip_patterns(skip: Iterable[str]) -> tuple[re.Pattern, ...]:
    if isinstance(skip, str | bytes) or not isinstance(skip, Iterable):
        raise TF1NameMapError(
            f"skip must be a sequence of regex patterns, got {skip!r}. Fix: wrap a single "
            f"pattern in a tuple, skip=({skip!r},); skip=() keeps every entry."
        )
    return tuple(_compile(pattern, "skip") for pattern in skip)


def rename(name: str, name_map: NameMap | None) -> str | None:
    """The name ``name_map`` turns checkpoint name ``name`` into, or ``None``
    if a rule with replacement ``None`` drops it.

    Every rule applies in order, to the result of the previous ones
    (``re.sub``), so rules compose like a ``sed`` script.

    >>> js.tf1.rename("model/dense/kernel", {r"^model/": "", r"^dense/": "out/"})
    'out/kernel'
    >>> js.tf1.rename("model/step_counter", [(r"step_counter$", None)]) is None
    True
    """
    for pattern, replacement in _rules(name_map):
        name = _apply_rule(pattern, replacement, name)
        if name is None:
            return None
    return name


def _apply_rule(pattern: re.Pattern, replacement: str | None, name: str) -> str | None:
    if replacement is None:
        return None if pattern.search(name) else name
    return pattern.sub(replacement, name)


def is_bookkeeping(name: str, skip: Iterable[str] = DEFAULT_SKIP) -> bool:
    """Whether checkpoint name ``name`` matches a ``skip`` pattern (by
    default :data:`DEFAULT_SKIP`: the global step, optimizer slots, …).

    >>> js.tf1.is_bookkeeping("global_step"), js.tf1.is_bookkeeping("dense_1/kernel")
    (True, False)
    """
    return _skipped(name, _skip_patterns(skip))


def _skipped(name: str, patterns: tuple[re.Pattern, ...]) -> bool:
    return any(pattern.search(name) for pattern in patterns)


def _numpy_dtype(tf_dtype: Any) -> np.dtype:
    return np.dtype(tf_dtype.as_numpy_dtype)


def _kind(dtype: np.dtype) -> str:
    if jnp.issubdtype(dtype, jnp.floating):
        return "float"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    if jnp.issubdtype(dtype, jnp.integer):
        return "int"
    if dtype == np.bool_:
        return "bool"
    return "other"


def _listing(items: Sequence[str]) -> str:
    shown = [f"    {item}" for item in items[:_MAX_LISTED]]
    if len(items) > _MAX_LISTED:
        shown.append(f"    ... and {len(items) - _MAX_LISTED} more")
    return "\n".join(shown)


def _suggest_rule(checkpoint_name: str, model_path: str) -> tuple[str, str] | None:
    """A ``name_map`` rule turning ``checkpoint_name`` into ``model_path``:
    their differing prefixes, keeping the longest common tail."""
    a, b = checkpoint_name.split("/"), model_path.split("/")
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
    """Renamed checkpoint names close to ``path``, those of its shape first."""
    same_shape = [name for name, s in candidates.items() if s == shape]
    for pool in (same_shape, list(candidates)):
        found = difflib.get_close_matches(path, pool, n=3, cutoff=0.3)
        if found:
            return found
    return []


def _flat_templates(like: Any) -> tuple[list[dict[str, Any]], bool]:
    """The template trees, flattened, and whether ``like`` was one tree."""
    if isinstance(like, Mapping):
        return [trees.flatten(like)], True
    if isinstance(like, tuple | list) and like and all(isinstance(t, Mapping) for t in like):
        return [trees.flatten(t) for t in like], False
    raise TF1ArgumentError(
        "like must be a params tree (a nested dict of arrays or jax.ShapeDtypeStruct, "
        "e.g. jax.eval_shape(f.init, rng, x)) or a tuple of trees such as (params, "
        f"state); got {type(like).__name__}. Fix: pass the model's params (or their "
        "jax.eval_shape), or like=None to load every entry."
    )


_FILE_SUFFIX = re.compile(r"\.(index|data-\d{5}-of-\d{5}|meta)$")


def _prefix(path: Any) -> str:
    """The checkpoint to read: ``path`` itself (a prefix or a directory), or
    the prefix of the checkpoint file it names (``model.ckpt-1000.index``).
    A path with no checkpoint is a :class:`TF1CheckpointNotFoundError` that
    lists the checkpoints beside it."""
    if not isinstance(path, str | os.PathLike):
        raise TF1ArgumentError(
            f"path must be a checkpoint prefix or directory (str or os.PathLike), got "
            f"{type(path).__name__}. Fix: e.g. js.load_tf1_checkpoint('ckpt/model.ckpt-1000')."
        )
    path = os.fspath(path)
    if os.path.isdir(path) or os.path.isfile(path + ".index"):
        return path
    prefix = _FILE_SUFFIX.sub("", path)
    if prefix != path and os.path.isfile(prefix + ".index"):
        return prefix  # a file of the checkpoint: its prefix is meant
    if prefix == path and os.path.isfile(path):
        return path  # a checkpoint in TF's V1 format: one file, read by TensorFlow
    data_files = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    if data_files:
        raise TF1CheckpointCorruptError(
            f"TF1 checkpoint {prefix} has data ({os.path.basename(data_files[0])}) but no "
            f"index file ({os.path.basename(prefix)}.index), so its entries cannot be found. "
            "Fix: use an intact copy of the checkpoint (the .index file comes with it), or an "
            "earlier one."
        )
    folder = os.path.dirname(path) or "."
    try:
        found = sorted(n[: -len(".index")] for n in os.listdir(folder) if n.endswith(".index"))
    except OSError:
        found = []
    near = f" Checkpoints in {folder}: {', '.join(found[:_MAX_LISTED])}." if found else ""
    raise TF1CheckpointNotFoundError(
        f"No TF1 checkpoint at {path}: neither {path}.index nor a directory exists.{near} "
        "Fix: give the checkpoint prefix (e.g. model.ckpt-1000, without .index or .data-*) "
        "or the directory holding the 'checkpoint' file."
    )


def _reader(tf: Any, path: str) -> tuple[Any, dict, dict]:
    """TensorFlow's reader of the checkpoint, and its name -> shape and name
    -> dtype maps. TensorFlow's errors become typed ones."""
    try:
        reader = tf.train.load_checkpoint(path)
        return reader, reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    except Exception as e:  # TF raises OpErrors, ValueError, IndexError, ...
        if os.path.isdir(path) and tf.train.latest_checkpoint(path) is None:
            raise TF1CheckpointNotFoundError(
                f"No TF1 checkpoint in the directory {path}: it has no valid 'checkpoint' "
                "file naming one. Fix: give the checkpoint prefix (e.g. "
                f"{os.path.join(path, 'model.ckpt-1000')})."
            ) from e
        raise TF1CheckpointCorruptError(
            f"TF1 checkpoint {path} cannot be read: {describe_cause(e)}. Its index or data file "
            "is damaged or missing. Fix: use an intact copy of the checkpoint, or an earlier one."
        ) from e


def _read_tensor(reader: Any, path: str, name: str) -> np.ndarray:
    try:
        return np.asarray(reader.get_tensor(name))
    except Exception as e:  # DataLossError (checksum), OutOfRangeError, IndexError, ...
        raise TF1CheckpointCorruptError(
            f"TF1 checkpoint {path}: entry {name} cannot be read ({describe_cause(e)}); the "
            "data file is damaged or missing. Fix: use an intact copy of the checkpoint, "
            "or an earlier one."
        ) from e


def _dtype_arg(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TF1ArgumentError(
            f"dtype must be a floating dtype such as jnp.bfloat16 or None, got {dtype!r}."
        ) from None


def load_tf1_checkpoint(
    path: str | os.PathLike,
    name_map: NameMap | None = None,
    *,
    like: Any = None,
    skip: Iterable[str] = DEFAULT_SKIP,
    dtype: Any = None,
    strict: bool = True,
    return_report: bool = False,
) -> Any:
    """Reads a TF1 ``tf.compat.v1.train.Saver`` checkpoint into a params tree.

    Each checkpoint entry becomes the leaf at its name: ``enc/rnn/lstm_cell/kernel``
    is ``params["enc"]["rnn"]["lstm_cell"]["kernel"]``, after dropping
    bookkeeping entries (``skip``) and renaming (``name_map``); see the
    module documentation for the rules.

    Args:
        path: the checkpoint prefix (``.../model.ckpt-1000``), one of its
            files (``.index``, ``.data-00000-of-00001``: the prefix is read),
            or a directory (its latest checkpoint is read).
        name_map: ordered regex rules ``(pattern, replacement)``, as a list of
            pairs or a dict; each applies in turn as ``re.sub``; a
            replacement ``None`` drops the matching names.
        like: the model's params tree, ``(params, state)``, or their
            ``jax.eval_shape``: every path must get exactly one entry of the
            same shape, cast to the template's dtype (and placed with its
            sharding, when it has one). The result has the template's
            structure; a path in several templates is loaded into each.
        skip: regex patterns of checkpoint names to drop, matched before
            ``name_map`` (default :data:`DEFAULT_SKIP`; ``()`` keeps all).
        dtype: without ``like``, the dtype for floating entries (default:
            their own; float64 is float32 unless x64 is enabled).
        strict: with ``like``, raise on missing model paths and unused
            checkpoint names. ``False`` loads what matches and leaves the
            template's leaf where nothing does. Shape and dtype-kind
            mismatches raise either way.
        return_report: also return a :class:`TF1LoadReport`.

    Returns:
        The params tree (a tuple of trees if ``like`` is a tuple), or
        ``(tree, report)`` with ``return_report=True``.

    Raises:
        TF1DependencyError: TensorFlow is not installed (``pip install 'jaxscope[tf]'``).
        TF1ArgumentError: ``path``, ``like`` or ``dtype`` is malformed.
        TF1NameMapError: ``name_map`` or ``skip`` is malformed, or the names
            it makes do not form a params tree.
        TF1CheckpointNotFoundError: no checkpoint at ``path``.
        TF1CheckpointCorruptError: the checkpoint's files cannot be read.
        TF1UnsupportedEntryError: an entry holds strings.
        TF1CheckpointMismatchError: with ``like``, the checkpoint does not
            match; the message names the model paths and checkpoint names.

    >>> params = js.load_tf1_checkpoint(  # doctest: +SKIP
    ...     "ckpt/model.ckpt-1000",
    ...     name_map=[(r"^seq2seq/", ""), (r"/rnn/lstm_cell/", "/lstm/")],
    ...     like=jax.eval_shape(f.init, 0, tokens),
    ... )
    """
    # Every argument is checked before TensorFlow is imported or a file read.
    rules = _rules(name_map)
    skip_patterns = _skip_patterns(skip)
    dtype = _dtype_arg(dtype)
    templates, single = _flat_templates(like) if like is not None else ([], True)
    path = _prefix(path)
    tf = _import_tensorflow()
    reader, shapes, dtypes = _reader(tf, path)

    skipped: list[str] = []
    renamed: dict[str, str] = {}  # checkpoint name -> model path
    taken: dict[str, str] = {}  # model path -> checkpoint name
    for name in sorted(shapes):
        if _skipped(name, skip_patterns):
            skipped.append(name)
            continue
        new = name
        for pattern, replacement in rules:
            new = _apply_rule(pattern, replacement, new)
            if new is None:
                break
        if new is None:
            skipped.append(name)
            continue
        _check_renamed(path, name, new, taken)
        renamed[name] = new
        taken[new] = name
    _check_prefixes(path, taken)

    if like is None:
        flat = {}
        cast = {}
        for new, name in taken.items():
            stored = _numpy_dtype(dtypes[name])
            if _kind(stored) == "other":
                raise TF1UnsupportedEntryError(
                    f"Checkpoint entry {name} (model path {new}) in {path} holds "
                    f"{dtypes[name].name} values, which JAX cannot hold. Fix: drop it "
                    f"with the name_map rule ({'^' + re.escape(name) + '$'!r}, None)."
                )
            want = stored
            if dtype is not None and _kind(stored) == "float":
                want = dtype
            want = jax.dtypes.canonicalize_dtype(want)
            if want != stored:
                cast[new] = (str(stored), str(want))
            flat[new] = jnp.asarray(_read_tensor(reader, path, name).astype(want))
        report = TF1LoadReport(
            loaded=dict(taken),
            skipped=tuple(skipped),
            unused=(),
            missing=(),
            renamed=renamed,
            cast=cast,
        )
        tree = trees.unflatten(flat)
        return (tree, report) if return_report else tree

    owners: dict[str, list[int]] = {}  # model path -> the templates holding it
    for index, flat_template in enumerate(templates):
        for model_path in flat_template:
            owners.setdefault(model_path, []).append(index)
    missing = [p for p in owners if p not in taken]
    unused = [name for name, new in renamed.items() if new not in owners]
    mismatched = []
    cast = {}
    for model_path, name in taken.items():
        for index in owners.get(model_path, ()):
            template = templates[index][model_path]
            want_shape = tuple(np.shape(template))
            have_shape = tuple(shapes[name])
            stored = _numpy_dtype(dtypes[name])
            want = np.dtype(jnp.result_type(template))
            if have_shape != want_shape:
                why = f"checkpoint shape {have_shape}, model shape {want_shape}"
            elif _kind(stored) != _kind(want):
                why = f"checkpoint dtype {dtypes[name].name}, model dtype {want}"
            else:
                if stored != want:
                    cast[model_path] = (str(stored), str(want))
                continue
            if (model_path, name, why) not in mismatched:
                mismatched.append((model_path, name, why))
    report = TF1LoadReport(
        loaded={p: n for p, n in taken.items() if p in owners},
        skipped=tuple(skipped),
        unused=tuple(unused),
        missing=tuple(missing),
        renamed=renamed,
        mismatched=tuple(mismatched),
        cast=cast,
    )
    if mismatched or (strict and (missing or unused)):
        raise TF1CheckpointMismatchError(_mismatch_message(path, report, templates, shapes), report)

    outs = [dict(flat_template) for flat_template in templates]
    for model_path, name in report.loaded.items():
        value = _read_tensor(reader, path, name)
        for index in owners[model_path]:
            template = templates[index][model_path]
            cast_value = value.astype(np.dtype(jnp.result_type(template)))
            sharding = getattr(template, "sharding", None)
            outs[index][model_path] = (
                jax.device_put(cast_value, sharding)
                if sharding is not None
                else jnp.asarray(cast_value)
            )
    result = [trees.unflatten(flat) for flat in outs]
    tree = result[0] if single else type(like)(result)
    return (tree, report) if return_report else tree


def _check_renamed(path: str, name: str, new: str, taken: dict[str, str]) -> None:
    try:
        trees.check_name(new)
    except errors.InvalidNameError as e:
        raise TF1NameMapError(
            f"Checkpoint entry {name} in {path} is renamed to {new!r}, which is not a "
            f"valid variable name ({e}). Fix: change the name_map rules."
        ) from None
    if new in taken:
        raise TF1NameMapError(
            f"Checkpoint entries {taken[new]} and {name} in {path} are both renamed to "
            f"{new}. Fix: change the name_map rules so that each model path gets one "
            "entry, or drop one of them with a (pattern, None) rule."
        )


def _check_prefixes(path: str, taken: dict[str, str]) -> None:
    """TF1 allowed ``a/x`` beside ``a/x/y``; a nested tree cannot hold both."""
    for new, name in taken.items():
        parts = new.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in taken:
                raise TF1NameMapError(
                    f"Checkpoint entry {taken[prefix]} in {path} (model path {prefix}) "
                    f"is a variable, and entry {name} (model path {new}) would be "
                    "below it; a nested params tree cannot hold both. Fix: rename one "
                    "of them with name_map (optimizer slots such as <var>/Adam sit below "
                    "their variable; the default skip drops them)."
                )


def _mismatch_message(
    path: str, report: TF1LoadReport, templates: list[dict[str, Any]], shapes: dict
) -> str:
    counts = str(report).splitlines()[0]
    lines = [f"TF1 checkpoint {path} does not match the model ({counts})."]
    unused_shapes = {report.renamed[n]: tuple(shapes[n]) for n in report.unused}
    back = {report.renamed[n]: n for n in report.unused}
    suggestion = None
    if report.missing:
        lines.append("Model paths with no checkpoint entry (model path <- nearest unused entries):")
        shown = []
        for model_path in report.missing:
            template = next(t[model_path] for t in templates if model_path in t)
            near = _nearest(model_path, tuple(np.shape(template)), unused_shapes)
            names = [back[n] for n in near]
            shown.append(f"{model_path} <- {', '.join(names) if names else '(none)'}")
            if suggestion is None and names:
                suggestion = _suggest_rule(report.renamed[names[0]], model_path)
        lines.append(_listing(shown))
    if report.unused:
        lines.append("Checkpoint entries the model does not use (checkpoint name [-> renamed]):")
        lines.append(_listing([_renamed(n, report.renamed[n]) for n in report.unused]))
    if report.mismatched:
        lines.append("Entries that do not fit (model path <- checkpoint name: why):")
        lines.append(_listing([f"{p} <- {n}: {why}" for p, n, why in report.mismatched]))
    if report.missing or report.unused:
        fix = "Fix: add name_map rules (ordered (pattern, replacement) regexes)"
        if suggestion is not None:
            fix += f", e.g. append the rule {suggestion!r}"
        fix += (
            "; drop entries with (pattern, None); or pass strict=False to load the "
            "names that match (mismatched shapes or dtypes always raise)."
        )
    else:
        fix = (
            "Fix: build the model with the checkpoint's shapes (and dtype kinds), or "
            "map these entries to other model paths with name_map."
        )
    lines.append(fix)
    return "\n".join(lines)


def _renamed(name: str, new: str) -> str:
    return name if name == new else f"{name} -> {new}"
