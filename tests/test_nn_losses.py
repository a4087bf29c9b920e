"""js.nn.sequence_loss against tf.contrib.seq2seq.sequence_loss. contrib is
gone from TensorFlow 2, so the reference is its code written with the TF ops
it used (sparse softmax cross-entropy, div_no_nan, count_nonzero)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((3, 4, 5)).astype(np.float32)
TARGETS = RNG.integers(0, 5, (3, 4)).astype(np.int32)
WEIGHTS = np.array([[1, 0.5, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], np.float32)  # an empty row


@pytest.fixture(scope="module")
def tf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("tensorflow")


def contrib_sequence_loss(tf, logits, targets, weights, avg_t, avg_b, sum_t, sum_b):
    """tf.contrib.seq2seq.sequence_loss (TF 1.15), line for line."""
    crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.reshape(targets, [-1]), logits=tf.reshape(logits, [-1, logits.shape[2]])
    )
    crossent *= tf.reshape(weights, [-1])
    if avg_t and avg_b:
        return tf.math.divide_no_nan(tf.reduce_sum(crossent), tf.reduce_sum(weights))
    if sum_t and sum_b:
        count = tf.cast(tf.math.count_nonzero(weights), crossent.dtype)
        return tf.math.divide_no_nan(tf.reduce_sum(crossent), count)
    crossent = tf.reshape(crossent, logits.shape[:2])
    if avg_t or avg_b:
        axis = [0] if avg_b else [1]
        total = tf.reduce_sum(weights, axis=axis)
        return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis=axis), total)
    if sum_t or sum_b:
        axis = [0] if sum_b else [1]
        count = tf.cast(tf.math.count_nonzero(weights, axis=axis), crossent.dtype)
        return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis=axis), count)
    return crossent


FLAGS = [  # average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch
    (True, True, False, False),
    (True, False, False, False),
    (False, True, False, False),
    (False, False, True, True),
    (False, False, True, False),
    (False, False, False, True),
    (False, False, False, False),
    (True, False, False, True),  # TF1 ignores the sum here
]


@pytest.mark.parametrize("flags", FLAGS, ids=str)
def test_sequence_loss_matches_tf1_contrib_formula(tf, flags):
    expected = contrib_sequence_loss(tf, LOGITS, TARGETS, WEIGHTS, *flags).numpy()
    loss = jax.jit(js.nn.sequence_loss, static_argnums=(3, 4, 5, 6))(
        LOGITS, TARGETS, WEIGHTS, *flags
    )
    assert loss.shape == expected.shape
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_sequence_loss_default_is_the_mean_over_weighted_tokens():
    log_probs = np.asarray(jax.nn.log_softmax(LOGITS))
    picked = -np.take_along_axis(log_probs, TARGETS[..., None], -1)[..., 0]
    expected = (picked * WEIGHTS).sum() / WEIGHTS.sum()
    np.testing.assert_allclose(js.nn.sequence_loss(LOGITS, TARGETS, WEIGHTS), expected, rtol=1e-5)


def test_sequence_loss_takes_a_softmax_loss_function():
    def margin(labels, logits):
        picked = jnp.take_along_axis(logits, labels[:, None], -1)[:, 0]
        return jnp.sum(jnp.maximum(0.0, 1.0 + logits - picked[:, None]), -1)

    loss = js.nn.sequence_loss(LOGITS, TARGETS, WEIGHTS, softmax_loss_function=margin)
    picked = np.take_along_axis(LOGITS, TARGETS[..., None], -1)
    per_token = np.maximum(0, 1 + LOGITS - picked).sum(-1)
    np.testing.assert_allclose(loss, (per_token * WEIGHTS).sum() / WEIGHTS.sum(), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(sum_over_timesteps=True), "average_across_timesteps and sum_over_timesteps"),
        (dict(sum_over_batch=True), "average_across_batch and sum_over_batch"),
    ],
)
def test_sequence_loss_average_and_sum_over_one_axis_is_an_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        js.nn.sequence_loss(LOGITS, TARGETS, WEIGHTS, **kwargs)


def test_sequence_loss_rejects_logits_without_a_time_axis():
    with pytest.raises(ValueError, match=r"\[batch, time, num_classes\]"):
        js.nn.sequence_loss(LOGITS[:, 0], TARGETS, WEIGHTS)
