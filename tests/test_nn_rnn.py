"""js.nn.multi_rnn_cell, dynamic_rnn and bidirectional_dynamic_rnn against
TF1's MultiRNNCell, dynamic_rnn and bidirectional_dynamic_rnn: variable
names, outputs (zeros past each sequence's length) and final states."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both
from .tf1_graph import close, legacy_tf, randn, run_graph

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 0], np.int32)  # full, short and empty sequences


@pytest.fixture(scope="module")
def tf():
    return legacy_tf()


def lstm_state() -> js.nn.LSTMState:
    return js.nn.LSTMState(randn(BATCH, UNITS), randn(BATCH, UNITS))


def tf_lstm_state(tf, state):
    return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(state.c, state.h)


def check_names_and_run(tf, model, tf_model, *args):
    """Our model through init and jitted apply; TF1's on our weights, with
    the same variable names; returns both outputs."""
    runs = run_both(model, *args)
    flat = js.flatten(runs.params)
    tf_run = run_graph(tf, tf_model, flat)
    assert set(tf_run.variables) == set(flat)
    return runs.out_jit, tf_run.outputs


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["no_lengths", "lengths"])
def test_dynamic_rnn_matches_tf1_dynamic_rnn(tf, lengths):
    xs, state = randn(BATCH, TIME, FEATURES), lstm_state()
    v1 = tf.compat.v1

    def model(xs, lengths):
        return js.nn.dynamic_rnn(js.nn.lstm_cell, xs, lengths, state)

    def tf_model():
        cell = v1.nn.rnn_cell.LSTMCell(UNITS)
        return v1.nn.dynamic_rnn(cell, xs, lengths, tf_lstm_state(tf, state))

    (outputs, final), (tf_outputs, tf_final) = check_names_and_run(tf, model, tf_model, xs, lengths)
    close(outputs, tf_outputs)
    close(final.c, tf_final.c)
    close(final.h, tf_final.h)


def test_dynamic_rnn_zeroes_outputs_and_freezes_state_past_each_length():
    xs, state = randn(BATCH, TIME, FEATURES), lstm_state()
    runs = run_both(lambda xs, n: js.nn.dynamic_rnn(js.nn.lstm_cell, xs, n, state), xs, LENGTHS)
    outputs, final = runs.out_jit
    assert np.all(np.asarray(outputs[1, 2:]) == 0) and np.all(np.asarray(outputs[2]) == 0)
    close(final.h[1], outputs[1, 1])
    close(final.c[2], state.c[2])  # an empty sequence keeps its initial state
    close(final.h[2], state.h[2])


def test_dynamic_rnn_time_major_and_gru_match_tf1(tf):
    xs, h = randn(TIME, BATCH, FEATURES), randn(BATCH, UNITS)
    v1 = tf.compat.v1

    def model(xs, lengths):
        return js.nn.dynamic_rnn(js.nn.gru_cell, xs, lengths, h, time_major=True)

    def tf_model():
        cell = v1.nn.rnn_cell.GRUCell(UNITS)
        return v1.nn.dynamic_rnn(cell, tf.constant(xs), LENGTHS, h, time_major=True)

    (outputs, final), (tf_outputs, tf_final) = check_names_and_run(tf, model, tf_model, xs, LENGTHS)
    assert outputs.shape == (TIME, BATCH, UNITS)
    close(outputs, tf_outputs)
    close(final, tf_final)


def test_multi_rnn_cell_under_dynamic_rnn_matches_tf1_multi_rnn_cell(tf):
    xs = randn(BATCH, TIME, FEATURES)
    states = (lstm_state(), lstm_state())
    v1 = tf.compat.v1
    cell = js.nn.multi_rnn_cell([js.nn.lstm_cell, js.nn.lstm_cell])

    def model(xs, lengths):
        return js.nn.dynamic_rnn(cell, xs, lengths, states)

    def tf_model():
        tf_cell = v1.nn.rnn_cell.MultiRNNCell(
            [v1.nn.rnn_cell.LSTMCell(UNITS), v1.nn.rnn_cell.LSTMCell(UNITS)]
        )
        initial = tuple(tf_lstm_state(tf, s) for s in states)
        return v1.nn.dynamic_rnn(tf_cell, xs, LENGTHS, initial)

    (outputs, final), (tf_outputs, tf_final) = check_names_and_run(tf, model, tf_model, xs, LENGTHS)
    close(outputs, tf_outputs)
    for ours, theirs in zip(final, tf_final, strict=True):
        close(ours.c, theirs.c)
        close(ours.h, theirs.h)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["no_lengths", "lengths"])
def test_bidirectional_dynamic_rnn_matches_tf1(tf, lengths):
    xs = randn(BATCH, TIME, FEATURES)
    state_fw, state_bw = lstm_state(), lstm_state()
    v1 = tf.compat.v1

    def model(xs, lengths):
        return js.nn.bidirectional_dynamic_rnn(
            js.nn.lstm_cell, js.nn.lstm_cell, xs, lengths, state_fw, state_bw
        )

    def tf_model():
        cells = v1.nn.rnn_cell.LSTMCell(UNITS), v1.nn.rnn_cell.LSTMCell(UNITS)
        return v1.nn.bidirectional_dynamic_rnn(
            *cells, xs, lengths, tf_lstm_state(tf, state_fw), tf_lstm_state(tf, state_bw)
        )

    (outputs, finals), (tf_outputs, tf_finals) = check_names_and_run(
        tf, model, tf_model, xs, lengths
    )
    for ours, theirs in zip(outputs, tf_outputs, strict=True):
        close(ours, theirs)
    for ours, theirs in zip(finals, tf_finals, strict=True):
        close(ours.c, theirs.c)
        close(ours.h, theirs.h)


def test_bidirectional_dynamic_rnn_has_tf1_fw_and_bw_names():
    def model(xs):
        zeros = js.nn.LSTMState.zeros(BATCH, UNITS)
        return js.nn.bidirectional_dynamic_rnn(
            js.nn.lstm_cell, js.nn.gru_cell, xs, None, zeros, zeros.h
        )

    params = run_both(model, randn(BATCH, TIME, FEATURES)).params
    assert sorted(js.flatten(params)) == [
        "bidirectional_rnn/bw/gru_cell/candidate/bias",
        "bidirectional_rnn/bw/gru_cell/candidate/kernel",
        "bidirectional_rnn/bw/gru_cell/gates/bias",
        "bidirectional_rnn/bw/gru_cell/gates/kernel",
        "bidirectional_rnn/fw/lstm_cell/bias",
        "bidirectional_rnn/fw/lstm_cell/kernel",
    ]


def test_dynamic_rnn_scope_argument_replaces_rnn():
    def model(xs):
        return js.nn.dynamic_rnn(js.nn.gru_cell, xs, None, jnp.zeros((BATCH, UNITS)), scope="enc")

    params = run_both(model, randn(BATCH, TIME, FEATURES)).params
    assert set(params) == {"enc"}


def test_multi_rnn_cell_in_a_python_loop_shares_with_an_enclosing_reuse_scope():
    cell = js.nn.multi_rnn_cell([js.nn.gru_cell, js.nn.gru_cell])

    def model(xs):
        state = (jnp.zeros((BATCH, UNITS)),) * 2
        for t in range(xs.shape[1]):
            with js.variable_scope("rnn", reuse=t > 0):
                _, state = cell(xs[:, t], state)
        return state

    xs = randn(BATCH, TIME, FEATURES)
    unrolled = js.transform(model)
    params = unrolled.init(0, xs)
    scanned = js.transform(
        lambda xs: js.nn.dynamic_rnn(cell, xs, None, (jnp.zeros((BATCH, UNITS)),) * 2)[1]
    )
    assert jax.tree.map(jnp.shape, scanned.init(0, xs)) == jax.tree.map(jnp.shape, params)
    close(jax.jit(scanned.apply)(params, xs)[1], jax.jit(unrolled.apply)(params, xs)[1])


def test_dynamic_rnn_without_initial_state_names_the_fix():
    f = js.transform(lambda xs: js.nn.dynamic_rnn(js.nn.lstm_cell, xs))
    with pytest.raises(ValueError, match=r"initial_state=js\.nn\.LSTMState\.zeros"):
        f.init(0, jnp.ones((BATCH, TIME, FEATURES)))


def test_multi_rnn_cell_with_the_wrong_number_of_states_names_the_fix():
    cell = js.nn.multi_rnn_cell([js.nn.gru_cell, js.nn.gru_cell])
    f = js.transform(lambda x: cell(x, (jnp.zeros((BATCH, UNITS)),)))
    with pytest.raises(ValueError, match="1 cell states for 2 cells"):
        f.init(0, jnp.ones((BATCH, FEATURES)))
