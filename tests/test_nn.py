"""js.nn: shapes, TF1 variable names, and numerics against hand-written
references (and against TensorFlow's own kernels where TF is installed)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import run_both

RNG = np.random.default_rng(0)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def shapes(params) -> dict:
    return {name: tuple(v.shape) for name, v in js.flatten(params).items()}


def close(a, b, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# dense


def test_dense_has_tf1_names_and_computes_affine_map():
    x = randn(4, 3)
    runs = run_both(lambda x: js.nn.dense(x, 5, jax.nn.relu), x)
    assert shapes(runs.params) == {"dense/kernel": (3, 5), "dense/bias": (5,)}
    p = runs.params["dense"]
    close(runs.out_jit, np.maximum(x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]), 0))


def test_dense_default_names_are_uniquified_like_tf1_layers():
    def model(x):
        return js.nn.dense(js.nn.dense(x, 4), 2)

    assert set(run_both(model, randn(1, 3)).params) == {"dense", "dense_1"}


def test_dense_reuse_shares_variables():
    def model(x):
        a = js.nn.dense(x, 3, name="shared")
        b = js.nn.dense(x, 3, name="shared", reuse=True)
        return a, b

    runs = run_both(model, randn(2, 3))
    assert set(js.flatten(runs.params)) == {"shared/kernel", "shared/bias"}
    close(runs.out_jit[0], runs.out_jit[1])


def test_dense_second_call_without_reuse_names_the_fix():
    def model(x):
        js.nn.dense(x, 3, name="d")
        return js.nn.dense(x, 3, name="d")

    with pytest.raises(errors.VariableExistsError, match=r"d/kernel.*reuse"):
        js.transform(model).init(0, jnp.ones((1, 3)))


def test_dense_without_bias_uses_scope_initializer():
    def model(x):
        with js.variable_scope("net", initializer=js.initializers.ones):
            return js.nn.dense(x, 2, use_bias=False)

    runs = run_both(model, randn(2, 3))
    assert shapes(runs.params) == {"net/dense/kernel": (3, 2)}
    close(runs.params["net"]["dense"]["kernel"], np.ones((3, 2)))


# embedding


def test_embedding_looks_up_rows_and_attend_ties_the_output():
    ids = np.array([[0, 3, 1], [2, 2, 4]], np.int32)

    def model(ids):
        x = js.nn.embedding(ids, 5, 4)
        return x, js.nn.embedding.attend(x)

    runs = run_both(model, ids)
    assert shapes(runs.params) == {"embedding/embeddings": (5, 4)}
    table = np.asarray(runs.params["embedding"]["embeddings"])
    x, logits = runs.out_jit
    close(x, table[ids])
    close(logits, table[ids] @ table.T)


def test_embedding_attend_alone_creates_nothing():
    def model(x):
        return js.nn.embedding_attend(x, name="embedding")

    with pytest.raises(errors.VariableMissingError, match="embedding/embeddings"):
        js.transform(model).init(0, jnp.ones((2, 4)))
    table = randn(7, 4)
    out = js.transform(model).apply({"embedding": {"embeddings": table}}, jnp.ones((2, 4)))
    close(out, np.ones((2, 4)) @ table.T)


# layer_norm


def test_layer_norm_has_tf1_names_and_normalizes_the_last_axis():
    x = randn(2, 3, 6)
    runs = run_both(lambda x: js.nn.layer_norm(x, epsilon=1e-5), x)
    assert shapes(runs.params) == {"LayerNorm/beta": (6,), "LayerNorm/gamma": (6,)}
    params = {"LayerNorm": {"beta": randn(6), "gamma": randn(6)}}
    out = jax.jit(js.transform(lambda x: js.nn.layer_norm(x, epsilon=1e-5)).apply)(params, x)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * params["LayerNorm"]["gamma"]
    close(out, expected + params["LayerNorm"]["beta"])


def test_layer_norm_without_center_and_scale_has_no_variables():
    runs = run_both(lambda x: js.nn.layer_norm(x, center=False, scale=False), randn(2, 4))
    assert runs.params == {}


# dropout


def test_dropout_is_identity_unless_training_with_a_positive_rate():
    x = randn(10)

    def model(x):
        return (
            js.nn.dropout(x, 0.5, is_training=False),
            js.nn.dropout(x, 0.0, is_training=True),
        )

    for out in run_both(model, x).out_jit:  # no rng needed
        close(out, x)


def test_dropout_without_is_training_is_an_error_not_a_silent_identity():
    f = js.transform(lambda x: js.nn.dropout(x, 0.5))
    with pytest.raises(TypeError, match="is_training"):
        f.apply({}, jnp.ones(3), rng=jax.random.key(0))


def test_dropout_with_a_traced_is_training_names_the_static_fix():
    f = js.transform(lambda x, training: js.nn.dropout(x, 0.5, is_training=training))
    with pytest.raises(TypeError, match=r"is_training.*static_argnames"):
        jax.jit(f.apply)({}, jnp.ones(3), True, rng=jax.random.key(0))


def test_dropout_drops_at_the_rate_and_rescales():
    f = js.transform(lambda x: js.nn.dropout(x, 0.25, is_training=True))
    x = jnp.ones(20000)
    y = np.asarray(jax.jit(f.apply)({}, x, rng=jax.random.key(3)))
    close(np.unique(y), [0.0, 1 / 0.75])
    assert abs((y == 0).mean() - 0.25) < 0.02
    y_again = np.asarray(f.apply({}, x, rng=jax.random.key(3)))
    np.testing.assert_array_equal(y, y_again)


def test_dropout_masks_differ_between_layers_and_scan_steps():
    def model(x):
        a = js.nn.dropout(x, 0.5, is_training=True)
        b = js.nn.dropout(x, 0.5, is_training=True)
        steps = js.scan(
            lambda c, x: (c, js.nn.dropout(x, 0.5, is_training=True)), 0, x[None].repeat(2, 0)
        )[1]
        return a, b, steps

    a, b, steps = js.transform(model).apply({}, jnp.ones(64), rng=jax.random.key(0))
    assert not np.array_equal(a, b)
    assert not np.array_equal(steps[0], steps[1])


def test_dropout_in_training_without_rng_names_the_fix():
    f = js.transform(lambda x: js.nn.dropout(x, 0.5, is_training=True))
    with pytest.raises(errors.MissingRNGError, match="rng"):
        f.apply({}, jnp.ones(3))


# tf1_dropout: TF1's tf.nn.dropout, which always drops


def test_tf1_dropout_always_drops_with_keep_prob_as_second_argument():
    f = js.transform(lambda x: js.nn.tf1_dropout(x, 0.75))  # keep_prob, not rate
    y = np.asarray(jax.jit(f.apply)({}, jnp.ones(20000), rng=jax.random.key(1)))
    close(np.unique(y), [0.0, 1 / 0.75])
    assert abs((y == 0).mean() - 0.25) < 0.02


def test_tf1_dropout_rate_keyword_drops_that_fraction():
    f = js.transform(lambda x: js.nn.tf1_dropout(x, rate=0.75))
    y = np.asarray(f.apply({}, jnp.ones(20000), rng=jax.random.key(1)))
    assert abs((y == 0).mean() - 0.75) < 0.02


def test_tf1_dropout_keep_prob_one_is_the_identity_without_rng():
    x = randn(10)
    close(js.transform(lambda x: js.nn.tf1_dropout(x, 1.0)).apply({}, x), x)


def test_tf1_dropout_takes_a_traced_keep_prob_like_a_tf1_placeholder():
    f = jax.jit(js.transform(lambda x, keep: js.nn.tf1_dropout(x, keep)).apply)
    x = jnp.ones(1000)
    close(f({}, x, 1.0, rng=jax.random.key(0)), x)
    assert (np.asarray(f({}, x, 0.5, rng=jax.random.key(0))) == 0).any()


def test_tf1_dropout_needs_exactly_one_of_keep_prob_and_rate():
    for kwargs in ({}, {"keep_prob": 0.5, "rate": 0.5}):
        f = js.transform(lambda x, kw=kwargs: js.nn.tf1_dropout(x, **kw))
        with pytest.raises(ValueError, match="exactly one of keep_prob"):
            f.apply({}, jnp.ones(3), rng=jax.random.key(0))


# lstm_cell


def lstm_reference(x, c, h, kernel, bias, forget_bias=1.0):
    z = np.concatenate([x, h], -1) @ kernel + bias
    i, j, f, o = np.split(z, 4, -1)
    new_c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
    return np.tanh(new_c) * sigmoid(o), new_c


def test_lstm_cell_has_tf1_names_and_gate_order_ijfo():
    x, c, h = randn(2, 3), randn(2, 5), randn(2, 5)
    runs = run_both(lambda x, c, h: js.nn.lstm_cell(x, js.nn.LSTMState(c, h)), x, c, h)
    assert shapes(runs.params) == {"lstm_cell/kernel": (8, 20), "lstm_cell/bias": (20,)}
    kernel, bias = (np.asarray(runs.params["lstm_cell"][k]) for k in ("kernel", "bias"))
    out, state = runs.out_jit
    ref_h, ref_c = lstm_reference(x, c, h, kernel, bias)
    close(out, ref_h)
    close(state.h, ref_h)
    close(state.c, ref_c)


def test_lstm_cell_in_scan_shares_one_set_of_variables():
    xs = randn(6, 2, 3)

    def rnn(xs):
        def step(state, x):
            h, state = js.nn.lstm_cell(x, state)
            return state, h

        return js.scan(step, js.nn.LSTMState.zeros(2, 4), xs)[1]

    runs = run_both(rnn, xs)
    assert shapes(runs.params) == {"lstm_cell/kernel": (7, 16), "lstm_cell/bias": (16,)}
    kernel, bias = (np.asarray(runs.params["lstm_cell"][k]) for k in ("kernel", "bias"))
    c = h = np.zeros((2, 4), np.float32)
    for t in range(6):
        h, c = lstm_reference(xs[t], c, h, kernel, bias)
        close(runs.out_jit[t], h)


def test_lstm_cell_in_a_python_loop_shares_with_reuse():
    def rnn(xs):
        state = js.nn.LSTMState.zeros(2, 4)
        for t in range(xs.shape[0]):
            _, state = js.nn.lstm_cell(xs[t], state, name="cell", reuse=t > 0)
        return state.h

    runs = run_both(rnn, randn(3, 2, 3))
    assert set(js.flatten(runs.params)) == {"cell/kernel", "cell/bias"}


# gru_cell


def gru_reference(x, h, gk, gb, ck, cb):
    r, u = np.split(sigmoid(np.concatenate([x, h], -1) @ gk + gb), 2, -1)
    c = np.tanh(np.concatenate([x, r * h], -1) @ ck + cb)
    return u * h + (1 - u) * c


def test_gru_cell_has_tf1_names_and_numerics():
    x, h = randn(2, 3), randn(2, 4)
    runs = run_both(lambda x, h: js.nn.gru_cell(x, h), x, h)
    assert shapes(runs.params) == {
        "gru_cell/gates/kernel": (7, 8),
        "gru_cell/gates/bias": (8,),
        "gru_cell/candidate/kernel": (7, 4),
        "gru_cell/candidate/bias": (4,),
    }
    p = {k: np.asarray(v) for k, v in js.flatten(runs.params).items()}
    close(p["gru_cell/gates/bias"], np.ones(8))  # TF1 starts by remembering
    out, state = runs.out_jit
    ref = gru_reference(
        x,
        h,
        p["gru_cell/gates/kernel"],
        p["gru_cell/gates/bias"],
        p["gru_cell/candidate/kernel"],
        p["gru_cell/candidate/bias"],
    )
    close(out, ref)
    close(state, ref)


# additive and multiplicative attention

MASK = np.array([[True, True, True, False, False], [True, True, True, True, True]])


def test_bahdanau_attention_names_and_masked_numerics():
    h, memory = randn(2, 4), randn(2, 5, 3)

    def model(h, memory, mask):
        keys = js.nn.dense(memory, 6, use_bias=False, name="memory_layer")
        return js.nn.bahdanau_attention(h, keys, memory, mask)

    runs = run_both(model, h, memory, MASK)
    assert shapes(runs.params) == {
        "memory_layer/kernel": (3, 6),
        "bahdanau_attention/query_layer/kernel": (4, 6),
        "bahdanau_attention/attention_v": (6,),
    }
    p = js.flatten(runs.params)
    keys = memory @ np.asarray(p["memory_layer/kernel"])
    query = h @ np.asarray(p["bahdanau_attention/query_layer/kernel"])
    v = np.asarray(p["bahdanau_attention/attention_v"])
    scores = (v * np.tanh(keys + query[:, None])).sum(-1)
    weights = softmax(np.where(MASK, scores, -np.inf))
    context, got_weights = runs.out_jit
    close(got_weights, weights)
    close(context, np.einsum("bs,bsd->bd", weights, memory))
    assert float(np.abs(got_weights[0, 3:]).max()) == 0.0


def test_bahdanau_attention_normalized_has_tf1_extra_variables():
    def model(h, keys):
        return js.nn.bahdanau_attention(h, keys, keys, normalize=True)

    runs = run_both(model, randn(2, 4), randn(2, 5, 6))
    assert shapes(runs.params) == {
        "bahdanau_attention/query_layer/kernel": (4, 6),
        "bahdanau_attention/attention_v": (6,),
        "bahdanau_attention/attention_g": (),
        "bahdanau_attention/attention_b": (6,),
    }
    close(runs.params["bahdanau_attention"]["attention_g"], np.sqrt(1 / 6))


def test_luong_attention_masked_numerics():
    h, keys, values = randn(2, 6), randn(2, 5, 6), randn(2, 5, 3)
    runs = run_both(
        lambda h, k, v, m: js.nn.luong_attention(h, k, v, m, scale=True), h, keys, values, MASK
    )
    assert shapes(runs.params) == {"luong_attention/attention_g": ()}
    weights = softmax(np.where(MASK, np.einsum("bu,bsu->bs", h, keys), -np.inf))
    context, got_weights = runs.out_jit
    close(got_weights, weights)
    close(context, np.einsum("bs,bsd->bd", weights, values))


def test_luong_attention_rejects_mismatched_query_size():
    f = js.transform(lambda h, k: js.nn.luong_attention(h, k, k))
    with pytest.raises(ValueError, match="memory_layer"):
        f.init(0, jnp.ones((2, 4)), jnp.ones((2, 5, 6)))


def test_masked_softmax_of_a_fully_masked_row_is_finite():
    w = js.nn.masked_softmax(jnp.array([[1.0, 2.0]]), jnp.array([[False, False]]))
    assert np.isfinite(np.asarray(w)).all()


# multi-head attention


def mha_reference(q_in, m_in, mask, p, num_heads):
    def proj(x, name):
        return x @ p[f"{name}/kernel"] + p[f"{name}/bias"]

    def heads(x):
        b, n, d = x.shape
        return x.reshape(b, n, num_heads, d // num_heads).transpose(0, 2, 1, 3)

    q, k, v = heads(proj(q_in, "query")), heads(proj(m_in, "key")), heads(proj(m_in, "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    weights = softmax(np.where(mask, scores, -np.inf))
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(q_in.shape[0], q_in.shape[1], -1)
    return proj(out, "output"), weights


def test_multi_head_attention_names_shapes_and_numerics():
    query, memory = randn(2, 4, 8), randn(2, 5, 6)
    mask = MASK[:, None, None, :]

    def model(query, memory, mask):
        return js.nn.multi_head_attention(query, memory, mask, num_heads=2, return_weights=True)

    runs = run_both(model, query, memory, mask)
    assert shapes(runs.params) == {
        "multihead_attention/query/kernel": (8, 8),
        "multihead_attention/query/bias": (8,),
        "multihead_attention/key/kernel": (6, 8),
        "multihead_attention/key/bias": (8,),
        "multihead_attention/value/kernel": (6, 8),
        "multihead_attention/value/bias": (8,),
        "multihead_attention/output/kernel": (8, 8),
        "multihead_attention/output/bias": (8,),
    }
    p = {k.split("/", 1)[1]: np.asarray(v) for k, v in js.flatten(runs.params).items()}
    out, weights = runs.out_jit
    ref_out, ref_weights = mha_reference(query, memory, mask, p, 2)
    assert out.shape == (2, 4, 8) and weights.shape == (2, 2, 4, 5)
    close(weights, ref_weights)
    close(out, ref_out)


def test_multi_head_causal_self_attention_ignores_the_future():
    x = randn(1, 5, 8)
    f = js.transform(lambda x: js.nn.multi_head_attention(x, x, js.nn.causal_mask(5), num_heads=4))
    params = f.init(0, x)
    changed = x.copy()
    changed[:, 3:] += 1.0  # only the future of positions 0..2 changes
    close(f.apply(params, x)[:, :3], f.apply(params, changed)[:, :3])


# multi-head attention through jax.nn.dot_product_attention: the fused way
# (no weights asked for) against the explicit way (return_weights=True)


def padding(lengths, size):
    """``[..., 1, 1, S]``: key ``s`` of sequence ``b`` is real if ``s < lengths[b]``."""
    return (np.arange(size) < np.asarray(lengths)[..., None])[..., None, None, :]


# (query shape, memory shape or None for self-attention, mask, num_heads);
# the Transformer of examples/seq2seq uses width 64, 4 heads, causal
# self-attention over 12 target steps and cross-attention under a padding
# mask of the source.
ATTENTION_CASES = {
    "no_mask": ((2, 4, 8), (2, 5, 8), None, 2),
    "padding_and_an_empty_memory": ((2, 4, 8), (2, 5, 8), padding([3, 0], 5), 2),
    "causal_and_padding": ((2, 5, 8), None, js.nn.causal_mask(5) & padding([2, 5], 5), 2),
    "transformer_self": ((3, 12, 64), None, js.nn.causal_mask(12), 4),
    "transformer_cross": ((3, 12, 64), (3, 10, 64), padding([10, 7, 1], 10), 4),
    "two_batch_axes": ((2, 3, 4, 8), (2, 3, 5, 8), padding([[5, 2, 1], [4, 3, 0]], 5), 2),
    "unbatched": ((4, 8), (5, 8), np.tril(np.ones((4, 5), bool)), 2),
}


class Spy:
    """Counts calls of ``jax.nn.dot_product_attention``."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = jax.nn.dot_product_attention

        def spy(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(jax.nn, "dot_product_attention", spy)


def attention_both_ways(query_shape, memory_shape, mask, num_heads, dtype=jnp.float32):
    """Outputs and gradients (for params, query and memory) of the fused and
    the explicit way, jitted, with the same params."""
    query = jnp.asarray(randn(*query_shape), dtype)
    memory = query if memory_shape is None else jnp.asarray(randn(*memory_shape), dtype)

    def attend(weights):
        def fn(query, memory):
            with js.variable_scope("model", dtype=dtype):
                out = js.nn.multi_head_attention(
                    query, memory, mask, num_heads=num_heads, return_weights=weights
                )
            return out[0] if weights else out

        return js.transform(fn)

    fused, explicit = attend(False), attend(True)
    params = fused.init(0, query, memory)

    def run(f):
        def loss(p, q, m):
            out = f.apply(p, q, m)
            return jnp.sum(jnp.sin(out).astype(jnp.float32)), out

        grads, out = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(params, query, memory)
        return out, grads

    return run(fused), run(explicit)


@pytest.mark.parametrize("case", ATTENTION_CASES, ids=str)
def test_fused_attention_matches_the_explicit_way_with_gradients(case, monkeypatch):
    spy = Spy(monkeypatch)
    (out, grads), (expected, expected_grads) = attention_both_ways(*ATTENTION_CASES[case])
    assert spy.calls == 2  # the fused way's init and jitted grad; none of the explicit's
    close(out, expected)
    jax.tree.map(close, grads, expected_grads)


def test_fused_attention_matches_the_explicit_way_in_bfloat16():
    query_shape, memory_shape, mask, heads = ATTENTION_CASES["padding_and_an_empty_memory"]
    (out, _), (expected, _) = attention_both_ways(
        query_shape, memory_shape, mask, heads, dtype=jnp.bfloat16
    )
    assert out.dtype == expected.dtype == jnp.bfloat16
    close(out.astype(jnp.float32), expected.astype(jnp.float32), tol=3e-2)


def test_fully_masked_queries_get_uniform_weights_without_weights_asked_for():
    query, memory = jnp.asarray(randn(1, 2, 8)), jnp.asarray(randn(1, 5, 8))
    f = js.transform(lambda q, m: js.nn.multi_head_attention(q, m, padding([0], 5), num_heads=2))
    out = jax.jit(f.apply)(f.init(0, query, memory), query, memory)
    # Uniform weights: every query gets the mean of the values.
    assert np.isfinite(np.asarray(out)).all()
    close(out[:, 0], out[:, 1])


def test_attention_without_weights_goes_through_dot_product_attention(monkeypatch):
    spy = Spy(monkeypatch)
    x = randn(2, 5, 8)
    f = js.transform(lambda x: js.nn.multi_head_attention(x, x, js.nn.causal_mask(5), num_heads=2))
    jax.jit(f.apply)(f.init(0, x), x)
    assert spy.calls == 2  # init and the jitted apply


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(return_weights=True),
        dict(dropout_rate=0.1, is_training=True),
        dict(value_size=3),
    ],
    ids=["weights", "dropout", "value_size"],
)
def test_attention_goes_the_explicit_way_where_the_fused_one_cannot(monkeypatch, kwargs):
    spy = Spy(monkeypatch)
    x = randn(2, 5, 8)
    f = js.transform(lambda x: js.nn.multi_head_attention(x, x, num_heads=2, **kwargs))
    f.apply(f.init(0, x), x, rng=jax.random.key(0))
    assert spy.calls == 0


# against TensorFlow's own kernels (skipped without TensorFlow)


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def test_dense_matches_tf1_xw_plus_b(tf):
    x, kernel, bias = randn(3, 4), randn(4, 5), randn(5)
    expected = tf.compat.v1.nn.xw_plus_b(x, kernel, bias).numpy()
    f = js.transform(lambda x: js.nn.dense(x, 5))
    close(f.apply({"dense": {"kernel": kernel, "bias": bias}}, x), expected)


def test_layer_norm_default_epsilon_matches_tf1_contrib_layer_norm(tf):
    # contrib's layer_norm (BERT's): tf.nn.moments over the last axis and
    # tf.nn.batch_normalization with variance_epsilon=1e-12. A tiny variance
    # makes the epsilon visible.
    x = 1e-5 * randn(4, 6)
    beta, gamma = randn(6), randn(6)
    mean, var = tf.nn.moments(tf.constant(x), axes=[-1], keepdims=True)
    expected = tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-12).numpy()
    f = js.transform(lambda x: js.nn.layer_norm(x))
    out = f.apply({"LayerNorm": {"beta": beta, "gamma": gamma}}, x)
    close(out, expected, tol=1e-4)  # with epsilon 1e-6 the output shrinks ~100x


def test_lstm_cell_matches_tf1_lstm_block_cell(tf):
    # TF1's fused LSTMBlockCell kernel: the LSTMCell/BasicLSTMCell math and
    # gate layout (i, j, f, o), forget_bias added to f.
    x, c, h = randn(3, 4), randn(3, 5), randn(3, 5)
    kernel, bias = randn(9, 20), randn(20)
    zeros = np.zeros(5, np.float32)
    tf_out = tf.raw_ops.LSTMBlockCell(
        x=x, cs_prev=c, h_prev=h, w=kernel, wci=zeros, wcf=zeros, wco=zeros, b=bias,
        forget_bias=1.0, cell_clip=-1.0, use_peephole=False,
    )  # fmt: skip
    f = js.transform(lambda x, c, h: js.nn.lstm_cell(x, js.nn.LSTMState(c, h)))
    out, state = f.apply({"lstm_cell": {"kernel": kernel, "bias": bias}}, x, c, h)
    close(state.c, tf_out.cs.numpy())
    close(out, tf_out.h.numpy())


def test_gru_cell_matches_tf1_gru_block_cell(tf):
    x, h = randn(3, 4), randn(3, 5)
    gk, gb, ck, cb = randn(9, 10), randn(10), randn(9, 5), randn(5)
    tf_out = tf.raw_ops.GRUBlockCell(x=x, h_prev=h, w_ru=gk, w_c=ck, b_ru=gb, b_c=cb)
    params = {
        "gru_cell": {"gates": {"kernel": gk, "bias": gb}, "candidate": {"kernel": ck, "bias": cb}}
    }
    out, _ = js.transform(lambda x, h: js.nn.gru_cell(x, h)).apply(params, x, h)
    close(out, tf_out.h.numpy())
