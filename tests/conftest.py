"""Shared test helpers: every program runs through init and jitted apply."""

from __future__ import annotations

import os

# TF1's tf.compat.v1.layers and rnn_cell need the tf_keras package under
# Keras 3; TensorFlow reads this when it is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import dataclasses
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
