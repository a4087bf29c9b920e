"""js.nn.batch_norm against TF1's tf.layers.batch_normalization: names and
trainability, outputs and gradients in training and inference, and the
moving statistics after TF1's update ops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import run_both
from .tf1_graph import close, legacy_tf, randn, run_graph


@pytest.fixture(scope="module")
def tf():
    return legacy_tf()


def weights(shape: int | list[int]) -> dict:
    """Non-trivial values for every variable, so that each one matters."""
    shape = [shape] if isinstance(shape, int) else shape
    return {
        "batch_normalization/gamma": 1.0 + 0.5 * randn(*shape),
        "batch_normalization/beta": randn(*shape),
        "batch_normalization/moving_mean": randn(*shape),
        "batch_normalization/moving_variance": 0.5 + np.abs(randn(*shape)),
    }


def split(flat: dict) -> tuple[dict, dict]:
    """``(params, state)``: the moving statistics are state."""
    params = {k: v for k, v in flat.items() if "moving" not in k}
    state = {k: v for k, v in flat.items() if "moving" in k}
    return js.unflatten(params), js.unflatten(state)


def check_against_tf1(tf, x, is_training: bool, **kwargs) -> None:
    """One call of the layer (outputs, gradients of a weighted sum with
    respect to x, gamma and beta, moving statistics after the update ops)
    against TF1 on the same weights."""
    axis = kwargs.get("axis", -1)
    shape = (
        [n if a in axis else 1 for a, n in enumerate(x.shape)] if isinstance(axis, list) else None
    )
    flat = weights(x.shape[axis] if shape is None else shape)
    probe = randn(*x.shape)
    v1 = tf.compat.v1

    def tf_model():
        tx = tf.constant(x)
        y = v1.layers.batch_normalization(tx, training=is_training, **kwargs)
        wrt = {v.name.removesuffix(":0"): v for v in v1.trainable_variables()}
        grads = tf.gradients(tf.reduce_sum(y * probe), [tx, *wrt.values()])
        named = dict(zip(["x", *wrt], grads, strict=True))
        return y, named, v1.get_collection(v1.GraphKeys.UPDATE_OPS)

    flat = {k: v for k, v in flat.items() if kwargs.get("center", True) or "beta" not in k}
    tf_run = run_graph(tf, tf_model, flat)
    tf_y, tf_grads, _ = tf_run.outputs

    f = js.transform_with_state(lambda x: js.nn.batch_norm(x, is_training=is_training, **kwargs))
    params, state = split(flat)

    def loss(params, x):
        y, new_state = f.apply(params, state, x)
        return jnp.sum(y * probe), (y, new_state)

    (_, (y, new_state)), (grad_params, grad_x) = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    )(params, x)
    close(y, tf_y)
    close(grad_x, tf_grads.pop("x"), tol=1e-4)
    assert set(js.flatten(grad_params)) == set(tf_grads)
    for name, grad in js.flatten(grad_params).items():
        close(grad, tf_grads[name], tol=1e-4)
    for name, value in js.flatten(new_state).items():
        close(value, tf_run.variables[name])


def test_batch_norm_has_tf1_names_and_keeps_moving_statistics_as_state(tf):
    x = randn(4, 3)
    runs = run_both(lambda x: js.nn.batch_norm(x, is_training=True), x, with_state=True)
    tf_run = run_graph(tf, lambda: tf.compat.v1.layers.batch_normalization(x, training=True))
    expected = {"batch_normalization/gamma", "batch_normalization/beta"}
    assert set(js.flatten(runs.params)) == tf_run.trainable == expected
    assert set(js.flatten(runs.state)) == set(tf_run.variables) - tf_run.trainable
    for name, value in {**js.flatten(runs.params), **js.flatten(runs.state)}.items():
        close(value, tf_run.variables[name])  # TF1's initial values (ones, zeros)


@pytest.mark.parametrize("shape", [(6, 3), (3, 5, 4)], ids=str)
def test_batch_norm_training_matches_tf1_unfused(tf, shape):
    check_against_tf1(tf, randn(*shape) * 2 + 1, is_training=True)


def test_batch_norm_training_on_images_matches_tf1_fused_kernel(tf):
    # TF1 runs 4-D inputs through its fused kernel, which updates the
    # moving variance with the unbiased batch variance.
    check_against_tf1(tf, randn(2, 3, 3, 4) * 2 + 1, is_training=True)


def test_batch_norm_training_with_fused_false_matches_tf1(tf):
    check_against_tf1(tf, randn(2, 3, 3, 4), is_training=True, fused=False)


def test_batch_norm_momentum_epsilon_and_no_center_match_tf1(tf):
    check_against_tf1(
        tf, randn(2, 3, 3, 4), is_training=True, momentum=0.9, epsilon=1e-2, center=False
    )


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 3, 4)], ids=str)
def test_batch_norm_inference_uses_the_moving_statistics_like_tf1(tf, shape):
    check_against_tf1(tf, randn(*shape), is_training=False)


def test_batch_norm_over_channels_first_axis_matches_tf1(tf):
    check_against_tf1(tf, randn(2, 4, 3, 3), is_training=True, axis=1, fused=False)


def test_batch_norm_over_two_axes_matches_tf1(tf):
    # Several axes: TF1 keeps the parameters in x's rank, with 1 elsewhere.
    check_against_tf1(tf, randn(2, 3, 4, 2), is_training=True, axis=[1, 2])


def test_batch_norm_inference_leaves_the_state_unchanged():
    f = js.transform_with_state(lambda x: js.nn.batch_norm(x, is_training=False))
    x = randn(5, 3)
    params, state = f.init(0, x)
    _, new_state = jax.jit(f.apply)(params, state, x)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_reused_on_two_batches_updates_the_statistics_twice():
    # A discriminator called on real, then fake images: one set of
    # variables; the second update starts from the first one's result.
    def model(real, fake):
        a = js.nn.batch_norm(real, is_training=True, name="bn")
        b = js.nn.batch_norm(fake, is_training=True, name="bn", reuse=True)
        return a, b

    real, fake = randn(4, 2), randn(4, 2) + 3
    runs = run_both(model, real, fake, with_state=True)
    assert set(js.flatten(runs.params)) == {"bn/gamma", "bn/beta"}
    f = js.transform_with_state(model)
    _, state = jax.jit(f.apply)(runs.params, runs.state, real, fake)
    mean = 0.0
    for batch in (real, fake):
        mean = mean - (mean - batch.mean(0)) * (1 - 0.99)
    close(state["bn"]["moving_mean"], mean)


def test_batch_norm_needs_is_training():
    f = js.transform_with_state(lambda x: js.nn.batch_norm(x))
    with pytest.raises(TypeError, match="is_training"):
        f.init(0, jnp.ones((2, 3)))


def test_batch_norm_under_transform_names_transform_with_state():
    f = js.transform(lambda x: js.nn.batch_norm(x, is_training=True))
    with pytest.raises(errors.StateInStatelessTransformError, match="transform_with_state"):
        f.init(0, jnp.ones((2, 3)))
