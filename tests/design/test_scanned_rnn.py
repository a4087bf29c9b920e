"""An RNN over time with ``js.scan``: variables created inside the loop body
once, and shared by every step.

The step function asks for its variables by name as a plain Python loop
would in TF1 (a cell in a scope reused after the first step). Run with
``js.scan`` it compiles to one loop whatever the number of steps, and it
gets the same names and initial values as the unrolled loop, so the two
are interchangeable on the same params.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from ..conftest import run_both

STEPS, BATCH, FEATURES, UNITS = 6, 2, 3, 4
XS = jnp.asarray(np.random.default_rng(0).standard_normal((STEPS, BATCH, FEATURES)), jnp.float32)


def step(h, x):
    with js.variable_scope("cell", reuse=js.AUTO_REUSE):
        w_x = js.get_variable("w_x", [x.shape[-1], UNITS])
        w_h = js.get_variable("w_h", [UNITS, UNITS])
        b = js.get_variable("b", [UNITS], initializer=js.initializers.zeros)
    h = jnp.tanh(x @ w_x + h @ w_h + b)
    return h, h


def scanned(xs):
    with js.variable_scope("rnn"):
        return js.scan(step, jnp.zeros((xs.shape[1], UNITS)), xs)[1]


def unrolled(xs):
    with js.variable_scope("rnn"):
        h, outputs = jnp.zeros((xs.shape[1], UNITS)), []
        for x in xs:
            h, out = step(h, x)
            outputs.append(out)
        return jnp.stack(outputs)


@pytest.fixture(scope="module")
def scan_runs():
    return run_both(scanned, XS)


def test_the_variables_are_created_once_without_a_time_axis(scan_runs):
    shapes = {name: v.shape for name, v in js.flatten(scan_runs.params).items()}
    assert shapes == {"rnn/cell/w_x": (3, 4), "rnn/cell/w_h": (4, 4), "rnn/cell/b": (4,)}


def test_the_scan_has_the_unrolled_loops_names_and_initial_values(scan_runs):
    loop_runs = run_both(unrolled, XS)
    jax.tree.map(np.testing.assert_array_equal, scan_runs.params, loop_runs.params)
    np.testing.assert_allclose(scan_runs.out_jit, loop_runs.out_jit, rtol=1e-5, atol=1e-6)


def test_the_unrolled_loop_runs_on_the_scans_params(scan_runs):
    out = jax.jit(js.transform(unrolled).apply)(scan_runs.params, XS)
    np.testing.assert_allclose(out, scan_runs.out_jit, rtol=1e-5, atol=1e-6)


def test_the_scan_traces_one_loop_whatever_the_length(scan_runs):
    jaxpr = jax.make_jaxpr(js.transform(scanned).apply)(scan_runs.params, XS)
    assert [e.primitive.name for e in jaxpr.eqns].count("scan") == 1
