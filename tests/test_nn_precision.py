"""js.nn under mixed precision: each layer computes in the dtype of the params
it is handed, and keeps its numerically sensitive parts (normalization
statistics, softmaxes) in float32, as Flax and jax.nn.dot_product_attention do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .tf1_graph import randn


def dot_operand_dtypes(fn, *args) -> list[tuple[str, str]]:
    """The operand dtypes of every ``dot_general`` in ``fn``'s jaxpr, sub-jaxprs
    (scan bodies, jit calls, custom derivatives) included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(tuple(str(v.aval.dtype) for v in eqn.invars))
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


BF16 = js.precision.Policy(compute_dtype=jnp.bfloat16)
X = jnp.asarray(randn(2, 3, 8))  # float32: the layers cast it themselves
MASK = js.nn.causal_mask(3)


def mha(x, **kwargs):
    return js.nn.multi_head_attention(x, x, MASK, num_heads=2, **kwargs)


def lstm(x):
    return js.nn.lstm_cell(x, js.nn.LSTMState.zeros(x.shape[:-1], 4, jnp.bfloat16))[0]


def gru(x):
    return js.nn.gru_cell(x, jnp.zeros((*x.shape[:-1], 4), jnp.bfloat16))[0]


def embedding_attend(x):
    js.nn.embedding(jnp.zeros(1, jnp.int32), 11, 8, name="embedding")  # the table
    return js.nn.embedding.attend(x, name="embedding")


def bahdanau(x):
    keys = js.nn.dense(x, 6, use_bias=False, name="memory_layer")
    return js.nn.bahdanau_attention(x[:, 0], keys, x)[0]


LAYERS = {
    "dense": lambda x: js.nn.dense(x, 5),
    "embedding": lambda x: js.nn.embedding(jnp.argmax(x, axis=-1), 11, 4),
    "embedding_attend": embedding_attend,
    "layer_norm": js.nn.layer_norm,
    "multi_head_attention_fused": mha,
    "multi_head_attention_with_weights": lambda x: mha(x, return_weights=True)[0],
    "conv1d": lambda x: js.nn.conv1d(x, 4, 2),
    "lstm_cell": lstm,
    "gru_cell": gru,
    "bahdanau_attention": bahdanau,
}


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_compute_in_the_dtype_of_the_params_they_are_handed(layer):
    def fn(x):
        with js.variable_scope("m", custom_getter=BF16.getter):
            return LAYERS[layer](x)

    f = js.transform(fn)
    params = f.init(0, X)
    assert {str(v.dtype) for v in jax.tree.leaves(params)} == {"float32"}
    assert jax.jit(f.apply)(params, X).dtype == jnp.bfloat16
    operands = dot_operand_dtypes(f.apply, params, X)
    assert set(operands) <= {("bfloat16", "bfloat16")}


def wide_and_narrow(shape, rng):
    """bfloat16 values around 1024 that differ in their last bits: a mean or
    a centering done in bfloat16 rounds them away (its step at 1024 is 8)."""
    return jnp.asarray(1024 + 8 * rng.integers(0, 4, shape), jnp.bfloat16)


def layer_norm(policy):
    def fn(x):
        with js.variable_scope("m", custom_getter=policy.getter):
            return js.nn.layer_norm(x)

    return js.transform(fn)


def test_layer_norm_statistics_are_float32_for_bfloat16_inputs():
    x = wide_and_narrow((4, 16), np.random.default_rng(0))
    params = layer_norm(BF16).init(0, x)
    y = layer_norm(BF16).apply(params, x)
    expected = layer_norm(js.precision.Policy()).apply(params, x.astype(jnp.float32))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=1e-2, atol=1e-2)


def test_batch_norm_statistics_are_float32_for_bfloat16_inputs():
    x = wide_and_narrow((16, 3), np.random.default_rng(1))
    f = js.transform_with_state(lambda x: js.nn.batch_norm(x, is_training=True))
    params, state = f.init(0, x)
    y, new_state = f.apply(params, state, x)
    expected, expected_state = f.apply(params, state, x.astype(jnp.float32))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=1e-2, atol=1e-2)
    jax.tree.map(np.testing.assert_array_equal, new_state, expected_state)


def test_masked_softmax_of_bfloat16_logits_is_the_float32_softmax_rounded():
    logits = jnp.asarray(randn(64, 33) * 4, jnp.bfloat16)
    mask = jnp.asarray(np.random.default_rng(2).random((64, 33)) < 0.8)
    weights = js.nn.masked_softmax(logits, mask)
    expected = js.nn.masked_softmax(logits.astype(jnp.float32), mask).astype(jnp.bfloat16)
    assert weights.dtype == jnp.bfloat16
    np.testing.assert_array_equal(weights, expected)
