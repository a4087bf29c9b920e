"""TF1's seq2seq pattern: separate train and inference functions sharing
variables by scope name.

The training function builds the encoder and a teacher-forced decoder
(``js.nn.dynamic_rnn`` over the target) in the scopes ``encoder`` and
``decoder``. The inference function is written separately, entirely under
``reuse=True``: it opens the same scope names and decodes greedily one step
at a time with the same cell and projection. Its own ``init`` fails, as in
TF1 (nothing may be created under reuse); its ``apply`` runs on the params
that the training function's ``init`` made (and training updates).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from ..conftest import run_both

VOCAB, EMBED, UNITS, BOS, STEPS = 7, 4, 8, 1, 5
SRC = jnp.asarray([[3, 4, 5, 6], [6, 5, 4, 3]], jnp.int32)


def cell(x, state):
    return js.nn.lstm_cell(x, state, name="lstm_cell")


def encode(src):
    with js.variable_scope("encoder"):
        xs = js.nn.embedding(src, VOCAB, EMBED, name="embedding")
        zeros = jnp.zeros((src.shape[0], UNITS))
        _, state = js.nn.dynamic_rnn(cell, xs, initial_state=js.nn.LSTMState(zeros, zeros))
    return state


def train(src, tgt_in):
    """Logits of the teacher-forced decoder: ``[batch, time, vocab]``."""
    state = encode(src)
    with js.variable_scope("decoder"):
        ys = js.nn.embedding(tgt_in, VOCAB, EMBED, name="embedding")
        outputs, _ = js.nn.dynamic_rnn(cell, ys, initial_state=state)
        return js.nn.dense(outputs, VOCAB, name="projection")


def infer(src):
    """Greedy decoding, every variable looked up by name: ``[batch, STEPS]``."""
    with js.variable_scope(js.get_variable_scope(), reuse=True):
        state = encode(src)
        token = jnp.full((src.shape[0],), BOS, jnp.int32)
        tokens = []
        for _ in range(STEPS):
            with js.variable_scope("decoder"):
                y = js.nn.embedding(token, VOCAB, EMBED, name="embedding")
                with js.variable_scope("rnn"):  # where dynamic_rnn put the cell
                    h, state = cell(y, state)
                token = jnp.argmax(js.nn.dense(h, VOCAB, name="projection"), -1)
            tokens.append(token)
        return jnp.stack(tokens, 1)


def train_params():
    return js.transform(train).init(0, SRC, jnp.zeros((2, STEPS), jnp.int32))


def test_inference_alone_cannot_create_its_variables():
    with pytest.raises(js.errors.VariableMissingError, match="encoder/embedding/embeddings"):
        js.transform(infer).init(0, SRC)


def test_inference_runs_on_the_params_training_made():
    params = train_params()
    f = js.transform(infer)
    tokens = f.apply(params, SRC)
    np.testing.assert_array_equal(jax.jit(f.apply)(params, SRC), tokens)
    assert tokens.shape == (2, STEPS)


def test_greedy_tokens_are_what_teacher_forcing_on_them_predicts():
    params = train_params()
    tokens = js.transform(infer).apply(params, SRC)
    tgt_in = jnp.concatenate([jnp.full((2, 1), BOS, jnp.int32), tokens[:, :-1]], 1)
    runs = run_both(train, SRC, tgt_in)  # init with the same rng: the same params
    jax.tree.map(np.testing.assert_array_equal, runs.params, params)
    np.testing.assert_array_equal(jnp.argmax(runs.out_jit, -1), tokens)
