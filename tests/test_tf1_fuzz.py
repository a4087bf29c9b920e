"""Differential fuzzing against TF1: random scope programs, run in both.

A program is a list of ops (open a variable scope by name, by
``default_name`` or by re-entering a captured scope, with a reuse flag and
settings; open a ``name_scope``; exit; ``get_variable`` of a new or an
existing name with a shape, dtype and initializer; ``scope.get_variable``;
``reuse_variables()``; ``set_initializer``/``set_dtype``; an out-of-order
exit; a bad argument). :func:`execute` runs one against the adapter of
``tf1_adapter`` in TF1 (graph mode, a fresh graph, its own thread) and in
jaxscope (init, eager apply, jitted apply), recording for each op what it
returned (the scope's name, reuse flag and dtype; the name, dtype and shape
of the variable ``get_variable`` returned) or the built-in base of the error
it raised; the program goes on after an error, as TF's own tests go on
after ``assertRaises``. The two records must be equal op by op, and so must
the variables left (names, dtypes, shapes, initial values); jaxscope's apply
and jitted apply must record what its init recorded (up to init's first
error, where apply may find a reused variable in its tree, DESIGN §1).

Every program starts with ``set_initializer(constant)`` and
``set_dtype(float32)`` on the root scope, so that initial values are
comparable and the root asks for its dtype on reuse as TF1's does (DESIGN §3
lets jaxscope's default root accept any stored dtype). Not generated, as
DESIGN.md makes them differ on purpose: op-name strings (not uniquified),
names that are both a variable and a sub-tree, a shape or dtype given with
a concrete initializer (or one of another shape than the variable's), an
out-of-order exit TF1 does not notice (only name scopes above it), the same
scope object entered twice while open, which getters a failing op called.

Each test fuzzes one group of features with hypothesis, derandomized, so CI
runs the same programs every time; ``JAXSCOPE_FUZZ_EXAMPLES=300`` runs 300
per test, and ``JAXSCOPE_FUZZ_SHRINK=1`` shrinks a failing program to a
minimal one. ``python -m tests.test_tf1_fuzz 300`` runs 300 programs with
every feature and prints the pass rate and the first op where each failing
program differs.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .tf1_adapter import (
    builtin_bases,
    in_thread,
    nvidia_float32_variable_storage_getter,
    reuse_flag,
    run_tf1,
    run_three,
    variables_of,
)

EXAMPLES = int(os.environ.get("JAXSCOPE_FUZZ_EXAMPLES", "25"))
# Shrinking a failure costs hundreds of runs; the failing program is printed
# either way. JAXSCOPE_FUZZ_SHRINK=1 shrinks it to a minimal one.
SHRINK = os.environ.get("JAXSCOPE_FUZZ_SHRINK") == "1"
FUZZ = settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAX_OPS = 20
SCOPE_NAMES = ("a", "b", "a/b")  # disjoint from variable names: no leaf/sub-tree clash
DEFAULT_NAMES = ("layer", "block")
# Each variable name has a usual shape, asked for most of the time, so that
# most reuses succeed and programs run long; options repeat to weight them.
USUAL_SHAPES = {"v": (1,), "w": (), "u": (2,)}
VARIABLE_NAMES = tuple(USUAL_SHAPES)
CONSTANTS = (0.25, 2.0)
ROOT_CONSTANT = 0.5
REUSE = (None, "AUTO_REUSE", "AUTO_REUSE", "AUTO_REUSE", True, False)
DTYPES = (None, None, None, "float32", "float16")
GETTERS = ("g1", "g2", "rename")
TF1_GETTERS = ("kw", "nvidia")
BAD_ARGUMENTS = (
    "no_name",  # variable_scope(None): TypeError
    "default_reuse",  # default_name with reuse=True: ValueError
    "default_auto_reuse",  # default_name with AUTO_REUSE: ValueError
    "reuse_str",  # reuse="yes": ValueError
    "name_int",  # variable_scope(3): TypeError
    "aux_str",  # auxiliary_name_scope="invalid": TypeError
    "getter_int",  # custom_getter=3, then get_variable, under the root: ValueError
    "colon_scope",  # variable_scope("a:b"): ValueError
    "colon_variable",  # get_variable("a:b"): ValueError
    "no_shape",  # get_variable without shape or initializer: ValueError
)

# Features beyond the base programs, each fuzzed by its own test.
ALL = frozenset({"out_of_order", "bad_arguments", "tf1_getters", "concrete"})


# --- Generating programs -----------------------------------------------------------------


def generate(choose: Callable[[int], int], features: frozenset) -> list[tuple]:
    """A random program; ``choose(n)`` picks an int in ``[0, n)`` (0 is the
    simplest choice, so hypothesis shrinks towards short, plain programs)."""

    def pick(options):
        return options[choose(len(options))]

    ops: list[tuple] = []
    open_kinds: list[str] = []  # "vs" or "ns", innermost last
    captured = 1  # the root scope is captured at index 0
    # A single feature is weighted up, so that most programs exercise it;
    # with every feature, all are weighted alike.
    focus = len(features) == 1
    getters = GETTERS
    if "tf1_getters" in features:
        getters = TF1_GETTERS if focus else GETTERS + TF1_GETTERS
    initializers = ("none", "constant")
    if "concrete" in features:
        initializers += ("concrete",) * (3 if focus else 1)
    kinds = ["get"] * 4 + ["vs", "exit"] * 3 + ["ns", "scope_get", "reuse_variables", "set"]
    kinds += ["capture"]
    if "bad_arguments" in features:
        kinds += ["bad"] * (3 if focus else 1)
    if "out_of_order" in features:
        kinds += ["bad_exit", "vs"] * (3 if focus else 1)

    def shape_for(name):
        return pick((USUAL_SHAPES[name],) * 8 + (None, (3,)))

    for _ in range(MAX_OPS // 2 + choose(MAX_OPS // 2 + 1)):
        kind = pick(kinds)
        if kind == "get":
            name, init = pick(VARIABLE_NAMES), pick(initializers)
            if init == "concrete":  # its value's shape, its own dtype (DESIGN §3)
                ops.append(("get", name, None, None, init))
            else:
                ops.append(("get", name, shape_for(name), pick(DTYPES), init))
        elif kind == "vs":
            how = pick(("name", "default", "captured"))
            if how == "name":
                arg = pick(SCOPE_NAMES)
            elif how == "default":
                arg = pick(DEFAULT_NAMES)
            else:
                arg = choose(captured)
            reuse = pick(REUSE if how != "default" else (None, None, False))
            settings_ = {}
            if choose(3) == 0:
                settings_["initializer"] = pick(CONSTANTS)
            if choose(2 if focus and "concrete" in features else 4) == 0:
                settings_["dtype"] = "float16"
            if choose(2 if focus else 3) == 0:
                settings_["custom_getter"] = pick(getters)
            if choose(4) == 0:
                settings_["auxiliary_name_scope"] = False
            ops.append(("vs", how, arg, reuse, tuple(sorted(settings_.items()))))
            open_kinds.append("vs")
            captured += 1
        elif kind == "exit" and open_kinds:
            ops.append(("exit",))
            open_kinds.pop()
        elif kind == "ns":
            ops.append(("ns", pick(("n", "m"))))
            open_kinds.append("ns")
        elif kind == "scope_get":
            name = pick(VARIABLE_NAMES)
            ops.append(("scope_get", choose(captured), name, USUAL_SHAPES[name]))
        elif kind == "reuse_variables":
            ops.append(("reuse_variables",))
        elif kind == "set":
            what = pick(("initializer", "dtype"))
            ops.append(("set", what, pick(CONSTANTS) if what == "initializer" else "float16"))
        elif kind == "capture":
            ops.append(("capture",))
            captured += 1
        elif kind == "bad":
            ops.append(("bad", pick(BAD_ARGUMENTS)))
        elif kind == "bad_exit":
            # A variable scope with another variable scope open inside it:
            # TF1 refuses its exit (with only name scopes inside, TF1 does not
            # notice, see the module docstring).
            targets = [
                i for i, k in enumerate(open_kinds) if k == "vs" and "vs" in open_kinds[i + 1 :]
            ]
            if targets:
                ops.append(("bad_exit", len(open_kinds) - 1 - pick(targets)))
    return ops


# --- Running programs ------------------------------------------------------------------------


def make_getter(api, tag: str, seen: list) -> Callable:
    """The custom getter called ``tag``: ``g1``/``g2`` record each call,
    ``rename`` creates ``<name>_r``, ``kw`` is keyword-only, ``nvidia`` is
    NVIDIA's float32-storage getter."""
    if tag == "rename":

        def getter(getter, name, *args, **kwargs):
            return getter(name + "_r", *args, **kwargs)

    elif tag == "kw":

        def getter(**kw):
            seen.append(("kw", kw["name"]))
            return kw.pop("getter")(**kw)

    elif tag == "nvidia":
        return nvidia_float32_variable_storage_getter(api.tf)
    else:

        def getter(getter, name, *args, **kwargs):
            seen.append((tag, name))
            return getter(name, *args, **kwargs)

    return getter


def bad_argument(api, kind: str, root) -> None:
    """Performs one bad call (see ``BAD_ARGUMENTS``); a scope it opens is closed."""
    if kind == "colon_variable":
        api.get_variable("a:b", (1,))
        return
    if kind == "no_shape":
        api.get_variable("v", None)
        return
    args, kwargs = {
        "no_name": ((None,), {}),
        "default_reuse": ((None, "layer"), {"reuse": True}),
        "default_auto_reuse": ((None, "layer"), {"reuse": api.AUTO_REUSE}),
        "reuse_str": (("a",), {"reuse": "yes"}),
        "name_int": ((3,), {}),
        "aux_str": (("a",), {"auxiliary_name_scope": "invalid"}),
        "getter_int": (("a",), {"custom_getter": 3}),
        "colon_scope": (("a:b",), {}),
    }[kind]
    if kind == "getter_int":
        # Under the root, which has no getter: nested in another getter's
        # scope TF1 wraps the 3 and raises TypeError calling it; DESIGN §2
        # makes it a ValueError wherever it is.
        with api.variable_scope(root), api.variable_scope(*args, **kwargs):
            api.get_variable("v", (1,))
        return
    context = api.variable_scope(*args, **kwargs)
    context.__enter__()
    context.__exit__(None, None, None)


def describe_scope(api, scope) -> tuple:
    return (scope.name, reuse_flag(api, scope.reuse), api.dtype_of(scope.dtype))


def run_op(api, op: tuple, handles: list, captured: list, seen: list):
    """Runs one op; returns what it observed."""
    kind = op[0]
    if kind == "get":
        _, name, shape, dtype, init = op
        kwargs = {}
        if dtype is not None:
            kwargs["dtype"] = api.dtype(dtype)
        if init == "constant":
            kwargs["initializer"] = api.constant(0.75)
        elif init == "concrete":
            kwargs["initializer"] = np.full(USUAL_SHAPES[name], 1.5).tolist()
        value = api.get_variable(name, shape, **kwargs)
        return (api.name_of(value), api.dtype_name(value), tuple(value.shape))
    if kind == "scope_get":
        _, index, name, shape = op
        value = api.scope_get_variable(captured[index], name, shape)
        return (api.name_of(value), api.dtype_name(value), tuple(value.shape))
    if kind == "vs":
        _, how, arg, reuse, settings_ = op
        kwargs = dict(settings_)
        if "initializer" in kwargs:
            kwargs["initializer"] = api.constant(kwargs["initializer"])
        if "dtype" in kwargs:
            kwargs["dtype"] = api.dtype(kwargs["dtype"])
        if "custom_getter" in kwargs:
            kwargs["custom_getter"] = make_getter(api, kwargs["custom_getter"], seen)
        kwargs["reuse"] = api.AUTO_REUSE if reuse == "AUTO_REUSE" else reuse
        if how == "default":
            context = api.variable_scope(None, default_name=arg, **kwargs)
        else:
            context = api.variable_scope(captured[arg] if how == "captured" else arg, **kwargs)
        scope = context.__enter__()
        handles.append(("vs", context))
        captured.append(scope)
        return describe_scope(api, scope)
    if kind == "ns":
        context = api.name_scope(op[1])
        context.__enter__()
        handles.append(("ns", context))
        return None
    if kind == "exit":
        _, context = handles.pop()
        context.__exit__(None, None, None)
        return describe_scope(api, api.get_variable_scope())
    if kind == "bad_exit":
        _, context = handles[-1 - op[1]]
        context.__exit__(None, None, None)  # refused: stays open
        return None
    if kind == "reuse_variables":
        api.get_variable_scope().reuse_variables()
        return None
    if kind == "set":
        _, what, value = op
        scope = api.get_variable_scope()
        if what == "initializer":
            scope.set_initializer(api.constant(value))
        else:
            scope.set_dtype(api.dtype(value))
        return describe_scope(api, scope)
    if kind == "capture":
        captured.append(api.get_variable_scope())
        return None
    if kind == "bad":
        bad_argument(api, op[1], captured[0])
        return None
    raise AssertionError(op)


def execute(api, ops: list[tuple], seen: list) -> None:
    """Runs ``ops``, appending ``(index, outcome)`` per op to ``seen``; the
    scopes still open at the end are exited in order, as ops too. An op that
    raises is recorded and the program goes on, as TF's own tests go on after
    ``assertRaises``."""
    root = api.get_variable_scope()
    root.set_initializer(api.constant(ROOT_CONSTANT))
    root.set_dtype(api.float32)
    handles: list = []
    captured: list = [root]
    i = 0
    while i < len(ops) or handles:
        op = ops[i] if i < len(ops) else ("exit",)
        before = len(seen)
        try:
            seen.append((i, "ok", run_op(api, op, handles, captured, seen)))
        except Exception as error:
            # Which getters a failing op called before it raised is not
            # compared (TF1 checks a name after the getters, jaxscope before).
            del seen[before:]
            seen.append((i, "error", sorted(c.__name__ for c in builtin_bases(error))))
        i += 1


def run_program_tf1(ops: list[tuple]) -> tuple[list, dict]:
    """``(record, variables)`` of ``ops`` in TF1, in a throwaway thread."""
    run = in_thread(lambda: run_tf1(lambda api, seen: execute(api, ops, seen)))
    return run.seen, run.variables


def run_program_jaxscope(ops: list[tuple]) -> tuple[list, list, list, dict]:
    """``(init's record, apply's, jit's, variables)`` of ``ops`` in jaxscope."""
    records, runs = run_three(lambda api, seen: execute(api, ops, seen))
    return (*records, variables_of(runs.params))


def compare(ops: list[tuple]) -> tuple[str, str] | None:
    """None if TF1 and jaxscope agree on ``ops``, else ``(kind, details)`` of
    the first difference (``kind`` names the op, or what else differs)."""
    tf_seen, tf_vars = run_program_tf1(ops)
    try:
        js_seen, applied, jitted, js_vars = run_program_jaxscope(ops)
    except Exception:
        return "crash", traceback.format_exc(limit=-3)
    for k, (tf_event, js_event) in enumerate(zip(tf_seen, js_seen, strict=False)):
        if tf_event != js_event:
            # A getter's call is recorded before its op's outcome.
            i = next(e[0] for e in tf_seen[k:] if isinstance(e[0], int))
            op = ops[i] if i < len(ops) else ("exit",)
            kind = " ".join(map(str, op[:2])) if op[0] in ("bad", "vs") else op[0]
            return kind, f"op {i} {op}:\n  TF1:      {tf_event}\n  jaxscope: {js_event}"
    if len(tf_seen) != len(js_seen):
        return "length", f"TF1 records {len(tf_seen)} events, jaxscope {len(js_seen)}"
    if applied != jitted:
        return "jit", f"apply and jit record other events:\n  {applied}\n  {jitted}"
    # Up to init's first error: there, apply may find a variable asked for
    # by a reuse (and created later in the program) in its tree (DESIGN §1).
    errors = [k for k, event in enumerate(js_seen) if event[1] == "error"]
    agree = errors[0] if errors else len(js_seen)
    if applied[:agree] != js_seen[:agree]:
        return "apply", f"apply records other events than init:\n  {applied}\n  {js_seen}"
    if sorted(tf_vars) != sorted(js_vars):
        return "variables", f"TF1:      {sorted(tf_vars)}\n  jaxscope: {sorted(js_vars)}"
    for name, (tf_value, tf_dtype) in tf_vars.items():
        js_value, js_dtype = js_vars[name]
        if js_dtype != tf_dtype or js_value.shape != tf_value.shape:
            return (
                "variables",
                f"{name}: TF1 {tf_dtype}{tf_value.shape}, jaxscope {js_dtype}{js_value.shape}",
            )
        if not np.allclose(js_value.astype(np.float32), tf_value.astype(np.float32)):
            return "values", f"{name}: TF1 {tf_value}, jaxscope {js_value}"
    return None


@st.composite
def programs(draw, features: frozenset) -> list[tuple]:
    """Random programs using ``features``, as a hypothesis strategy."""
    return generate(lambda n: draw(st.integers(0, n - 1)), features)


def assert_agrees(ops: list[tuple]) -> None:
    difference = compare(ops)
    if difference is not None:
        pytest.fail(f"program {ops}\nTF1 and jaxscope differ at {difference[1]}", pytrace=False)


# --- Tests: one per group of features ------------------------------------------------------


@FUZZ
@given(programs(frozenset()))
def test_scope_programs_agree_with_tf1(ops):
    assert_agrees(ops)


@FUZZ
@given(programs(frozenset({"out_of_order"})))
def test_programs_with_out_of_order_exits_agree_with_tf1(ops):
    assert_agrees(ops)


@FUZZ
@given(programs(frozenset({"bad_arguments"})))
def test_programs_with_bad_arguments_agree_with_tf1(ops):
    assert_agrees(ops)


@FUZZ
@given(programs(frozenset({"tf1_getters"})))
def test_programs_with_tf1_style_getters_agree_with_tf1(ops):
    assert_agrees(ops)


@FUZZ
@given(programs(frozenset({"concrete"})))
def test_programs_with_concrete_initializers_agree_with_tf1(ops):
    assert_agrees(ops)


# --- Pass rate over many programs -----------------------------------------------------------


def pass_rate(n: int, seed: int = 0, features: frozenset = ALL) -> tuple[int, list]:
    """Runs ``n`` random programs; returns how many agree with TF1, and
    ``(program, kind, details)`` for each that does not."""
    rng = random.Random(seed)
    failures = []
    for _ in range(n):
        ops = generate(rng.randrange, features)
        difference = compare(ops)
        if difference is not None:
            failures.append((ops, *difference))
    return n - len(failures), failures


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 300
    passed, failures = pass_rate(n)
    for ops, kind, details in failures:
        print(f"program {ops}\n{kind}: {details}\n")
    kinds = Counter(kind for _, kind, _ in failures)
    print(f"{passed} of {n} programs agree with TF1; first differences by op: {dict(kinds)}")


if __name__ == "__main__":
    main(sys.argv)
