"""``js.layer_stack(..., per_layer_lists=True)``: per-layer inputs and outputs
as lists of one item per layer (each layer's cache an array of its own),
the layers a Python loop over the stacked params: the stacked stack's
variables, outputs and state."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors
from tests.conftest import assert_close as close
from tests.test_lift_state import BATCH, LAYERS, XS, D, cached_layer, decoding, run, same


def normalized_cached_layer(x, cache):
    """A per-layer input and output, and per-layer state (batch norm)."""
    w = js.get_variable("w", [D, D])
    x = js.nn.batch_norm(x @ w + cache, is_training=True, name="bn")
    return x, cache + x


# A batch of 8 rows: batch norm over 2 would be dominated by rounding (see test_lift_state).
CACHES = np.arange(LAYERS * 8 * D, dtype=np.float32).reshape(LAYERS, 8, D) / 100


def stack(lists):
    return js.layer_stack(LAYERS, with_per_layer_inputs=True, per_layer_lists=lists)


@pytest.mark.parametrize("layer", [cached_layer, normalized_cached_layer], ids=["params", "state"])
def test_per_layer_lists_give_the_stacked_stacks_variables_outputs_and_state(layer):
    params, state, (x, outs), new_state = run(
        lambda x: stack(True)(layer)(x, list(CACHES)), BATCH[0]
    )
    expected = run(lambda x: stack(False)(layer)(x, CACHES), BATCH[0])
    same((params, state), expected[:2])
    assert isinstance(outs, list) and len(outs) == LAYERS
    close((x, jnp.stack(outs), new_state), (expected[2][0], expected[2][1], expected[3]))


def test_per_layer_lists_carried_through_a_decoding_loop_give_the_stacked_caches():
    def lists(x):
        def body(loop):
            i, x, caches = loop
            with js.variable_scope("layers"):
                return (i + 1, *stack(True)(cached_layer)(x, caches))

        caches = [jnp.zeros(x.shape)] * LAYERS
        return js.while_loop(lambda loop: loop[0] < 4, body, (0, x, caches))[1:]

    params, _, (x, caches), _ = run(lists, XS[0])
    expected = run(decoding("while_loop"), XS[0])
    same(params, expected[0])
    close((x, jnp.stack(caches)), expected[2])


def test_per_layer_lists_outside_a_transform_are_a_python_loop():
    x, outs = stack(True)(lambda x, c: (x + c, c * 2.0))(jnp.zeros((2, D)), [jnp.ones((2, D))] * 3)
    np.testing.assert_array_equal(x, 3.0)
    np.testing.assert_array_equal(jnp.stack(outs), 2.0)


def test_a_per_layer_list_of_the_wrong_length_is_a_layer_body_error():
    def model(x):
        return stack(True)(cached_layer)(x, [jnp.zeros((2, D))] * (LAYERS - 1))

    with pytest.raises(errors.LayerBodyError, match=rf"lists of {LAYERS} items.*Fix"):
        js.transform(model).init(0, XS[0])


def test_per_layer_lists_without_per_layer_inputs_name_the_fix():
    with pytest.raises(errors.ArgumentError, match="with_per_layer_inputs=True"):
        js.layer_stack(LAYERS, per_layer_lists=True)
