"""``js.cond`` and ``js.while_loop`` (DESIGN §6): both branches' variables in
``init``, and a greedy decoder in a while loop.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import paths, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
X = jax.random.normal(jax.random.key(7), (B, D))


def key_data(key):
    return jax.random.key_data(key)


def branches(pred, x):
    def true_fn(x):
        with js.variable_scope("yes"):
            return x @ js.get_variable("w", [D, D])

    def false_fn(x):
        with js.variable_scope("no"):
            return x + js.get_variable("b", [D])

    return js.cond(pred, true_fn, false_fn, x)


@pytest.mark.parametrize("pred", [True, False])
def test_cond_creates_both_branches_variables_in_init(pred):
    params = js.transform(branches).init(0, pred, X)
    assert paths(params) == ["no/b", "yes/w"]


@pytest.mark.parametrize("pred", [True, False])
def test_cond_runs_the_chosen_branch_in_init_and_jitted_apply(pred):
    runs = run_both(branches, jnp.bool_(pred), X)
    params = runs.params
    expected = X @ params["yes"]["w"] if pred else X + params["no"]["b"]
    np.testing.assert_allclose(runs.out_init, expected, **TOL)
    np.testing.assert_allclose(runs.out_jit, expected, **TOL)


def test_cond_branches_creating_the_same_name_raise_as_tf1():
    def model(x):
        return js.cond(True, true_fn, false_fn, x)

    def true_fn(x):
        return x * js.get_variable("w", [D])

    def false_fn(x):
        return x + js.get_variable("w", [D])  # tf.cond builds both branches

    f = js.transform(model)
    with pytest.raises(errors.VariableExistsError, match="w already exists"):
        f.init(0, X)
    with pytest.raises(errors.VariableExistsError, match="w already exists"):
        jax.jit(f.apply)({"w": jnp.ones(D)}, X)


VOCAB, EOS, MAX_LEN = 6, 0, 8


def decoder_step(i, token, h):
    """One greedy step of an RNN decoder; the end-of-sequence logit grows with
    the step index (a length penalty), so every sequence ends."""
    with js.variable_scope("decoder"):
        embedding = js.get_variable("embedding", [VOCAB, HIDDEN])
        u = js.get_variable("u", [HIDDEN, HIDDEN])
        with js.variable_scope("proj"):
            w = js.get_variable("w", [HIDDEN, VOCAB])
            b = js.get_variable("b", [VOCAB], initializer=js.initializers.zeros)
    h = jnp.tanh(embedding[token] + h @ u)
    logits = (h @ w + b).at[EOS].add(0.3 * i)
    return jnp.argmax(logits).astype(jnp.int32), h


def greedy_decode(start):
    def keep_going(carry):
        i, token, _, _ = carry
        return (i < MAX_LEN) & (token != EOS)

    def step(carry):
        i, token, h, out = carry
        token, h = decoder_step(i, token, h)
        return i + 1, token, h, out.at[i].set(token)

    init = (jnp.int32(0), start, jnp.zeros(HIDDEN), jnp.full(MAX_LEN, -1, jnp.int32))
    length, _, _, tokens = js.while_loop(keep_going, step, init)
    return length, tokens


def python_decode(params, start):
    """The reference: the same greedy decoder as a Python loop."""
    step = jax.jit(js.transform(decoder_step).apply)
    tokens, token, h = [], start, jnp.zeros(HIDDEN)
    while len(tokens) < MAX_LEN and (not tokens or tokens[-1] != EOS):
        token, h = step(params, jnp.int32(len(tokens)), jnp.int32(token), h)
        tokens.append(int(token))
    return tokens


@pytest.mark.parametrize("seed", [0, 1])
def test_while_loop_greedy_decoder_in_init_and_jitted_apply(seed):
    runs = run_both(greedy_decode, jnp.int32(3), rng=seed)
    assert paths(runs.params) == [
        "decoder/embedding",
        "decoder/proj/b",
        "decoder/proj/w",
        "decoder/u",
    ]
    expected = python_decode(runs.params, 3)
    assert 1 < len(expected) < MAX_LEN  # stopped by the condition, not the bound
    for length, tokens in (runs.out_init, runs.out_jit):
        assert int(length) == len(expected)
        assert tokens.tolist() == expected + [-1] * (MAX_LEN - len(expected))


def test_while_loop_decoder_stops_at_end_of_sequence():
    # Biasing the projection toward EOS makes the first step emit it.
    params = js.transform(greedy_decode).init(0, jnp.int32(3))
    params["decoder"]["proj"]["b"] = jnp.zeros(VOCAB).at[EOS].set(100.0)
    length, tokens = jax.jit(js.transform(greedy_decode).apply)(params, jnp.int32(3))
    assert int(length) == 1
    assert tokens.tolist() == [EOS] + [-1] * (MAX_LEN - 1)


def test_next_rng_key_inside_while_loop_differs_per_iteration():
    def model():
        def body(carry):
            i, keys = carry
            return i + 1, keys.at[i].set(key_data(js.next_rng_key()))

        return js.while_loop(lambda c: c[0] < 3, body, (0, jnp.zeros((3, 2), jnp.uint32)))[1]

    keys = run_both(model, apply_rng=0).out_jit
    assert len({tuple(np.asarray(k)) for k in keys}) == 3
