"""A stack of identical Transformer blocks with ``js.layer_stack``.

The block (self-attention and a feed-forward layer, each with a residual
connection and layer norm) is written once, as for one layer. Decorated
with ``js.layer_stack(n)``, its variables get a leading layer axis and the
layers run as one ``lax.scan``, so the program does not grow with depth.
``js.unstack_layers`` turns the stacked params into those of the unrolled
model (``layer_0/...``, ``layer_1/...``), with the same initial values and
the same outputs; ``js.stack_layers`` goes back.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from ..conftest import run_both

LAYERS, BATCH, LENGTH, WIDTH, HEADS = 3, 2, 5, 8, 2
X = jnp.asarray(np.random.default_rng(0).standard_normal((BATCH, LENGTH, WIDTH)), jnp.float32)


def block(x):
    attended = js.nn.multi_head_attention(x, x, num_heads=HEADS, name="attention")
    x = js.nn.layer_norm(x + attended, name="attention_norm")
    hidden = js.nn.dense(x, 2 * WIDTH, jax.nn.relu, name="hidden")
    return js.nn.layer_norm(x + js.nn.dense(hidden, WIDTH, name="output"), name="output_norm")


def stacked(x):
    with js.variable_scope("encoder"):
        return js.layer_stack(LAYERS)(block)(x)


def unrolled(x):
    with js.variable_scope("encoder"):
        for i in range(LAYERS):
            with js.variable_scope(f"layer_{i}"):
                x = block(x)
        return x


@pytest.fixture(scope="module")
def stacked_runs():
    return run_both(stacked, X)


def test_each_variable_gets_a_leading_layer_axis(stacked_runs):
    flat = js.flatten(stacked_runs.params)
    assert flat["encoder/attention/query/kernel"].shape == (LAYERS, WIDTH, WIDTH)
    assert flat["encoder/output_norm/gamma"].shape == (LAYERS, WIDTH)
    assert all(leaf.shape[0] == LAYERS for leaf in flat.values())


def test_unstacked_params_are_the_unrolled_models_with_the_same_outputs(stacked_runs):
    unrolled_runs = run_both(unrolled, X)
    unstacked = {"encoder": js.unstack_layers(stacked_runs.params["encoder"])}
    jax.tree.map(np.testing.assert_array_equal, unstacked, unrolled_runs.params)
    np.testing.assert_allclose(stacked_runs.out_jit, unrolled_runs.out_jit, rtol=1e-5, atol=1e-5)


def test_stack_layers_gives_the_stacked_params_back(stacked_runs):
    unstacked = {"encoder": js.unstack_layers(stacked_runs.params["encoder"])}
    restacked = {"encoder": js.stack_layers(unstacked["encoder"])}
    jax.tree.map(np.testing.assert_array_equal, restacked, stacked_runs.params)
    out = jax.jit(js.transform(unrolled).apply)(unstacked, X)
    np.testing.assert_allclose(out, stacked_runs.out_jit, rtol=1e-5, atol=1e-5)


def test_the_layers_run_as_one_scan(stacked_runs):
    jaxpr = jax.make_jaxpr(js.transform(stacked).apply)(stacked_runs.params, X)
    scans = [e for e in jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 1 and scans[0].params["length"] == LAYERS
