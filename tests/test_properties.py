"""Properties of generated programs (issue 8), checked with hypothesis.

A program is a list of ops run by a small interpreter inside a model
function: enter a named scope (with a reuse flag), enter a ``default_name``
scope, exit the innermost scope, or ``get_variable(name, shape)``. A
reference model written from DESIGN §2-3 predicts what each op does: the
full name it obtains, whether that is a creation or a reuse, and the first
error. The properties: the library agrees with the reference model;
``apply(init(...))`` reproduces init's outputs; reuse returns the identical
array; the same rng gives bit-identical params in every run and process;
adding a variable never changes the others' initial values; and an error
``init`` raises is raised identically by ``apply`` given the params of the
program's longest valid prefix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxscope as js
from jaxscope import errors

from .conftest import assert_bit_identical

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def bounded(max_examples: int) -> settings:
    return settings(SETTINGS, max_examples=max_examples)


# Small alphabets, so that names collide: scopes and variables share "a" and
# "x", which makes leaf/sub-tree conflicts as likely as reuse and creation.
# Most gets ask for a name's usual shape, so that reuses mostly succeed.
SCOPE_NAMES = ("a", "b", "x")
DEFAULT_NAMES = ("layer", "x")
USUAL_SHAPES = {"w": (2, 3), "b": (3,), "x": (1,), "x/y": (2,), "a": ()}
SHAPES = ((1,), (2,), (2, 3))
REUSE_FLAGS = (None, True, js.AUTO_REUSE)

enter = st.tuples(st.just("enter"), st.sampled_from(SCOPE_NAMES), st.sampled_from(REUSE_FLAGS))
default = st.tuples(st.just("default"), st.sampled_from(DEFAULT_NAMES))
exit_ = st.tuples(st.just("exit"))
reuse_variables = st.tuples(st.just("reuse_variables"))
get_usual = st.sampled_from(sorted(USUAL_SHAPES)).map(lambda n: ("get", n, USUAL_SHAPES[n]))
get_any = st.tuples(st.just("get"), st.sampled_from(sorted(USUAL_SHAPES)), st.sampled_from(SHAPES))
# Weighted by repetition.
ops = st.one_of(
    enter, enter, default, exit_, exit_, reuse_variables, get_usual, get_usual, get_usual, get_any
)
programs = st.lists(ops, min_size=2, max_size=20)


# --- The interpreter --------------------------------------------------------------


@dataclasses.dataclass
class Trace:
    """What one run of a program observed, op by op."""

    scope_names: list[str] = dataclasses.field(default_factory=list)  # after each enter
    obtained: list[tuple[str, Any]] = dataclasses.field(default_factory=list)  # (name, value)


def interpret(program, trace: Trace):
    """Runs ``program``'s ops inside the current call; returns the values of
    its ``get`` ops. Scopes still open at the end (or at an error) are exited
    innermost first, as ``with`` blocks would."""
    entered = []
    root = js.get_variable_scope()
    try:
        for op in program:
            if op[0] in ("enter", "default"):
                if op[0] == "enter":
                    scope = js.variable_scope(op[1], reuse=op[2])
                else:
                    scope = js.variable_scope(None, default_name=op[1])
                scope.__enter__()
                entered.append(scope)
                trace.scope_names.append(js.get_variable_scope().name)
            elif op[0] == "exit":
                if entered:
                    entered.pop().__exit__(None, None, None)
            elif op[0] == "reuse_variables":
                js.get_variable_scope().reuse_variables()
            elif op[0] == "get_at_root":
                with js.variable_scope(root, reuse=js.AUTO_REUSE, auxiliary_name_scope=False):
                    value = js.get_variable(op[1], op[2])
                trace.obtained.append(("", value))
            else:
                _, name, shape = op
                value = js.get_variable(name, shape)
                trace.obtained.append((js.get_variable_scope().name, value))
    finally:
        while entered:
            entered.pop().__exit__(None, None, None)
    return [value for _, value in trace.obtained]


def transformed(program, trace: Trace | None = None):
    return js.transform(lambda: interpret(program, Trace() if trace is None else trace))


# --- The reference model ----------------------------------------------------------


@dataclasses.dataclass
class Prediction:
    scope_names: list[str]
    names: list[str]  # the full name each get op obtains, up to the error
    created: list[str]  # names in creation order
    reuses: list[bool]  # whether each get op is a reuse
    error: type[Exception] | None = None
    error_at: int | None = None  # index of the failing op
    error_name: str | None = None


def join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


def predict(program) -> Prediction:
    """What DESIGN §2-3 say ``init`` of ``program`` does."""
    stack = [("", False)]  # (full name, reuse flag)
    counts: dict[str, int] = {}
    shapes: dict[str, tuple] = {}
    leaves: set[str] = set()
    prefixes: set[str] = set()
    out = Prediction([], [], [], [])

    def fail(error, index, name):
        out.error, out.error_at, out.error_name = error, index, name
        return out

    for index, op in enumerate(program):
        scope, reuse = stack[-1]
        if op[0] == "enter":
            full = join(scope, op[1])
            stack.append((full, op[2] or reuse))
            counts[full] = counts.get(full, 0) + 1
            out.scope_names.append(full)
        elif op[0] == "default":
            name, i = op[1], 0
            while counts.get(join(scope, name)):
                i += 1
                name = f"{op[1]}_{i}"
            full = join(scope, name)
            stack.append((full, reuse))
            counts[full] = counts.get(full, 0) + 1
            out.scope_names.append(full)
        elif op[0] == "reuse_variables":
            stack[-1] = (scope, True)
        elif op[0] == "get_at_root":  # a new name, at the root, with AUTO_REUSE
            out.names.append(op[1])
            out.created.append(op[1])
            out.reuses.append(False)
        elif op[0] == "exit":
            if len(stack) > 1:
                below = stack.pop()[0] + "/"
                for name in counts:
                    if name.startswith(below):
                        counts[name] = 0
        else:
            _, name, shape = op
            full = join(scope, name)
            if full in shapes:
                if not reuse:
                    return fail(errors.VariableExistsError, index, full)
                if shapes[full] != shape:
                    return fail(errors.ShapeMismatchError, index, full)
                out.names.append(full)
                out.reuses.append(True)
                continue
            if reuse is True:
                return fail(errors.VariableMissingError, index, full)
            parts = full.split("/")
            above = ["/".join(parts[:i]) for i in range(1, len(parts))]
            if full in prefixes or any(p in leaves for p in above):
                return fail(errors.NameConflictError, index, full)
            prefixes.update(above)
            leaves.add(full)
            shapes[full] = shape
            out.names.append(full)
            out.created.append(full)
            out.reuses.append(False)
    return out


# --- Helpers --------------------------------------------------------------------------


def repair(program):
    """``program`` without the ops that fail, dropped one at a time."""
    while (expected := predict(program)).error is not None:
        program = program[: expected.error_at] + program[expected.error_at + 1 :]
    return program


def twice(body):
    """``body``, then ``body`` again with reuse on at the root: the second
    pass reuses what the first created."""
    depth = sum(1 for op in body if op[0] in ("enter", "default"))
    return body + [("exit",)] * depth + [("reuse_variables",)] + body


any_programs = st.one_of(programs, programs.map(twice))
valid_programs = any_programs.map(repair)
failing_programs = any_programs.filter(lambda p: predict(p).error is not None)


def digest(params) -> dict[str, str]:
    return {
        name: hashlib.sha256(np.asarray(value).tobytes()).hexdigest()
        for name, value in sorted(js.flatten(params).items())
    }


# --- The library agrees with the reference model ----------------------------------


@bounded(300)
@given(any_programs)
def test_init_creates_exactly_the_predicted_names_or_raises_the_predicted_error(program):
    expected = predict(program)
    trace = Trace()
    f = transformed(program, trace)
    if expected.error is None:
        params = f.init(0)
        assert sorted(js.flatten(params)) == sorted(expected.created)
    else:
        with pytest.raises(expected.error) as info:
            f.init(0)
        assert expected.error_name in str(info.value)
    assert trace.scope_names == expected.scope_names
    gets = _gets(program)[: len(trace.obtained)]
    names = [join(scope, op[1]) for (scope, _), op in zip(trace.obtained, gets, strict=True)]
    assert names == expected.names


def _gets(program):
    return [op for op in program if op[0] in ("get", "get_at_root")]


@bounded(100)
@given(valid_programs)
def test_every_created_name_is_unique_and_is_its_scope_path_plus_its_name(program):
    trace = Trace()
    params = transformed(program, trace).init(0)
    flat = js.flatten(params)
    created = [
        (join(scope, op[1]), value)
        for (scope, value), op, reuse in zip(
            trace.obtained, _gets(program), predict(program).reuses, strict=True
        )
        if not reuse
    ]
    assert len({name for name, _ in created}) == len(created) == len(flat)
    for name, value in created:
        assert flat[name] is value


@bounded(100)
@given(valid_programs)
def test_reuse_returns_the_identical_array_in_init_and_apply(program):
    for mode in ("init", "apply"):
        trace = Trace()
        f = transformed(program, trace)
        if mode == "init":
            f.init(0)
        else:
            f.apply(transformed(program).init(0))
        first: dict[str, Any] = {}
        for (scope, value), op in zip(trace.obtained, _gets(program), strict=True):
            name = join(scope, op[1])
            assert first.setdefault(name, value) is value


# --- init and apply agree ---------------------------------------------------------------


@bounded(100)
@given(valid_programs)
def test_apply_of_inits_params_reproduces_inits_outputs(program):
    captured = []
    f = js.transform(lambda: captured.append(interpret(program, Trace())) or captured[-1])
    params = f.init(0)
    assert_bit_identical(f.apply(params), captured[0])


@bounded(20)
@given(valid_programs)
def test_jitted_apply_of_inits_params_reproduces_inits_outputs(program):
    captured = []
    f = js.transform(lambda: captured.append(interpret(program, Trace())) or captured[-1])
    params = f.init(0)
    assert_bit_identical(jax.jit(f.apply)(params), captured[0])


@bounded(150)
@given(failing_programs)
def test_apply_raises_inits_error_given_the_params_of_the_longest_valid_prefix(program):
    expected = predict(program)
    prefix_params = transformed(program[: expected.error_at]).init(0)
    f = transformed(program)
    with pytest.raises(expected.error) as in_init:
        f.init(0)
    with pytest.raises(errors.ScopeError) as in_apply:
        f.apply(prefix_params)
    if expected.error is errors.VariableMissingError:
        # init says the reused name does not exist yet; apply says the tree
        # lacks it (or holds something else there, an InvalidParamsError,
        # which is a VariableMissingError): both name the variable.
        assert isinstance(in_apply.value, errors.VariableMissingError)
        assert expected.error_name in str(in_apply.value)
    else:
        assert type(in_apply.value) is type(in_init.value)
        assert str(in_apply.value) == str(in_init.value)


def test_reusing_a_name_below_a_variable_raises_the_same_error_in_init_and_apply():
    program = [("get", "x", (1,)), ("reuse_variables",), ("get", "x/y", (2,))]
    f = transformed(program)
    with pytest.raises(errors.VariableMissingError):
        f.init(0)
    with pytest.raises(errors.VariableMissingError):
        f.apply(transformed(program[:2]).init(0))


# --- Determinism ----------------------------------------------------------------------


@bounded(40)
@given(valid_programs, st.integers(0, 2**31 - 1))
def test_the_same_rng_gives_bit_identical_params_in_every_run(program, seed):
    f = transformed(program)
    assert_bit_identical(f.init(seed), f.init(seed))
    assert_bit_identical(f.init(jax.random.key(seed)), f.init(seed))


@bounded(80)
@given(valid_programs, st.data())
def test_adding_a_variable_elsewhere_never_changes_existing_initial_values(program, data):
    at = data.draw(st.integers(0, len(program)), label="insert at")
    grown = [*program[:at], ("get_at_root", "fresh/v", (2,)), *program[at:]]
    assert predict(grown).error is None
    before = js.flatten(transformed(program).init(0))
    after = js.flatten(transformed(grown).init(0))
    assert len(after) == len(before) + 1
    assert_bit_identical(before, {name: after[name] for name in before})


# A fixed program mixing every op, for the cross-process check.
CROSS_PROCESS_PROGRAM = [
    ("enter", "a", None),
    ("get", "w", (2, 3)),
    ("default", "layer"),
    ("get", "x/y", (2,)),
    ("exit",),
    ("default", "layer"),
    ("get", "b", (1,)),
    ("exit",),
    ("enter", "b", js.AUTO_REUSE),
    ("get", "w", (2,)),
    ("get", "w", (2,)),
    ("exit",),
    ("exit",),
    ("enter", "a", True),
    ("get", "w", (2, 3)),
]

_CROSS_PROCESS_SCRIPT = """
import json, sys
import jax
from tests.test_properties import CROSS_PROCESS_PROGRAM, digest, transformed
params = transformed(CROSS_PROCESS_PROGRAM).init(jax.random.key(1234))
print(json.dumps(digest(params)))
"""


def test_the_same_rng_gives_bit_identical_params_in_another_process():
    assert predict(CROSS_PROCESS_PROGRAM).error is None
    here = digest(transformed(CROSS_PROCESS_PROGRAM).init(jax.random.key(1234)))
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", _CROSS_PROCESS_SCRIPT],
        cwd=root,
        env={**os.environ, "PYTHONHASHSEED": seed, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(here) == sorted(predict(CROSS_PROCESS_PROGRAM).created)
    assert there == here
