"""Shared test helpers: every program runs through init and jitted apply."""

from __future__ import annotations

import os

# TF1's tf.compat.v1.layers and rnn_cell need the tf_keras package under
# Keras 3; TensorFlow reads this when it is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import contextlib
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

import jaxscope as js


@dataclasses.dataclass
class BothRuns:
    """What one program did in init, eager apply and jitted apply."""

    params: Any
    state: Any
    out_init: Any
    out_apply: Any
    out_jit: Any


def run_both(
    fn: Callable, *args, rng: Any = 0, with_state: bool = False, apply_rng: Any = None
) -> BothRuns:
    """Runs ``fn`` through ``init``, then eager and jitted ``apply`` on the
    params init returned, and checks that the three outputs agree.

    ``out_init`` is what ``fn`` returned while ``init`` ran (captured through
    a side channel, since init returns only the variables).
    """
    captured = []

    def wrapped(*a):
        out = fn(*a)
        captured.append(out)
        return out

    if with_state:
        f = js.transform_with_state(wrapped)
        params, state = f.init(rng, *args)
        out_apply, _ = f.apply(params, state, *args, rng=apply_rng)
        out_jit, _ = jax.jit(f.apply)(params, state, *args, rng=apply_rng)
    else:
        f = js.transform(wrapped)
        params, state = f.init(rng, *args), None
        out_apply = f.apply(params, *args, rng=apply_rng)
        out_jit = jax.jit(f.apply)(params, *args, rng=apply_rng)
    out_init = captured[0]
    for a, b in ((out_init, out_apply), (out_apply, out_jit)):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6), a, b)
    return BothRuns(params, state, out_init, out_apply, out_jit)


@pytest.fixture
def both():
    """The :func:`run_both` helper, as a fixture."""
    return run_both


# --- Helpers shared by several test files ----------------------------------------

MODES = ["init", "apply", "jit_apply"]


def run_in(mode, fn, params=None, state=None, *args, rng=0):
    """Runs ``fn`` once in ``mode`` (one of :data:`MODES`) through
    ``transform_with_state``."""
    f = js.transform_with_state(fn)
    if mode == "init":
        return f.init(rng, *args)
    apply = f.apply if mode == "apply" else jax.jit(f.apply)
    return apply(params or {}, state or {}, *args, rng=rng)


@contextlib.contextmanager
def raises(error, base, *words):
    """``pytest.raises(error)``, also checking the builtin base type and that
    each of ``words`` appears in the message."""
    with pytest.raises(error) as info:
        yield info
    assert isinstance(info.value, base)
    assert isinstance(info.value, js.errors.ScopeError)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def paths(tree) -> list[str]:
    """The sorted TF1 names of a tree's variables."""
    return sorted(js.flatten(tree))


def next_line() -> int:
    """The line number after the caller's current line."""
    return inspect.currentframe().f_back.f_lineno + 1


def assert_close(a, b, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Same structure, and leaves equal to the tolerances."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def assert_bit_identical(a, b) -> None:
    """Same structure, and leaves of the same shape, dtype and bytes."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def observe(program, *args):
    """Runs ``program(seen, *args)`` through init, apply and jitted apply;
    checks that the three runs recorded the same observations in ``seen``
    and returns ``(runs, observations of one run)``."""
    seen = []
    runs = run_both(lambda *a: program(seen, *a), *args)
    n = len(seen) // 3
    assert len(seen) == 3 * n and seen == seen[:n] * 3, seen
    return runs, seen[:n]


def scope_state(scope=None):
    """``(name, reuse)`` of a scope (the current one by default)."""
    scope = js.get_variable_scope() if scope is None else scope
    return scope.name, scope.reuse


def raises_in_init_and_apply(fn, exc, *words):
    """``fn`` raises ``exc`` in init and in apply (on an empty tree), with a
    message that holds every one of ``words``."""
    f = js.transform(fn)
    for run in (lambda: f.init(0), lambda: f.apply({})):
        with pytest.raises(exc) as info:
            run()
        for word in words:
            assert word in str(info.value), (word, str(info.value))
