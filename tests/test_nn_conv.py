"""js.nn.conv1d, conv2d and conv2d_transpose against TF1's tf.layers: the
same variable names, shapes and layouts, and the same outputs from the same
weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both
from .tf1_graph import close, legacy_tf, randn, run_graph


def shapes(flat: dict) -> dict:
    return {name: tuple(np.shape(v)) for name, v in flat.items()}


@pytest.fixture(scope="module")
def tf():
    return legacy_tf()


def check_against_tf1(tf, model, tf_model, x) -> js.Transformed:
    """Same names and shapes as TF1, and TF1's outputs from our weights."""
    runs = run_both(model, x)
    flat = js.flatten(runs.params)
    tf_run = run_graph(tf, lambda: tf_model(tf.constant(x)), flat)
    assert shapes(tf_run.variables) == shapes(flat)
    close(runs.out_jit, tf_run.outputs)
    return runs


CONV2D_CASES = [
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=(3, 2), padding="same", strides=2),
    dict(kernel_size=4, padding="SAME", strides=(2, 3)),
    dict(kernel_size=3, padding="same", dilation_rate=2),
    dict(kernel_size=(2, 3), padding="valid", dilation_rate=(2, 1)),
]


@pytest.mark.parametrize("kwargs", CONV2D_CASES, ids=str)
def test_conv2d_matches_tf1_layers_conv2d(tf, kwargs):
    check_against_tf1(
        tf,
        lambda x: js.nn.conv2d(x, 4, **kwargs),
        lambda x: tf.compat.v1.layers.conv2d(x, 4, **kwargs),
        randn(2, 7, 8, 3),
    )


def test_conv2d_unnamed_layers_are_numbered_like_tf1(tf):
    def model(x):
        return js.nn.conv2d(js.nn.conv2d(x, 4, 3, activation=jax.nn.relu), 2, 1)

    def tf_model(x):
        layers = tf.compat.v1.layers
        return layers.conv2d(layers.conv2d(x, 4, 3, activation=tf.nn.relu), 2, 1)

    runs = check_against_tf1(tf, model, tf_model, randn(2, 6, 6, 3))
    assert shapes(js.flatten(runs.params)) == {
        "conv2d/kernel": (3, 3, 3, 4),  # HWIO
        "conv2d/bias": (4,),
        "conv2d_1/kernel": (1, 1, 4, 2),
        "conv2d_1/bias": (2,),
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, padding="valid"),
        dict(kernel_size=4, padding="same", strides=2),
        dict(kernel_size=3, padding="same", dilation_rate=3),
    ],
    ids=str,
)
def test_conv1d_matches_tf1_layers_conv1d(tf, kwargs):
    runs = check_against_tf1(
        tf,
        lambda x: js.nn.conv1d(x, 5, **kwargs),
        lambda x: tf.compat.v1.layers.conv1d(x, 5, **kwargs),
        randn(2, 9, 3),
    )
    assert set(js.flatten(runs.params)) == {"conv1d/kernel", "conv1d/bias"}


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, padding="valid"),
        dict(kernel_size=4, padding="same", strides=2),
        dict(kernel_size=(3, 2), padding="valid", strides=(2, 3)),
        dict(kernel_size=5, padding="same", strides=3),
    ],
    ids=str,
)
def test_conv2d_transpose_matches_tf1_layers_conv2d_transpose(tf, kwargs):
    runs = check_against_tf1(
        tf,
        lambda x: js.nn.conv2d_transpose(x, 4, **kwargs),
        lambda x: tf.compat.v1.layers.conv2d_transpose(x, 4, **kwargs),
        randn(2, 5, 6, 3),
    )
    kernel = runs.params["conv2d_transpose"]["kernel"]
    assert kernel.shape[-2:] == (4, 3)  # [kh, kw, filters, in], as TF1 stores it


def test_conv_without_bias_has_only_a_kernel(tf):
    check_against_tf1(
        tf,
        lambda x: js.nn.conv2d(x, 2, 3, use_bias=False, name="c"),
        lambda x: tf.compat.v1.layers.conv2d(x, 2, 3, use_bias=False, name="c"),
        randn(1, 5, 5, 2),
    )


@pytest.mark.parametrize("layer", ["conv2d", "conv2d_transpose"])
def test_channels_first_is_channels_last_transposed(layer):
    # TF1's CPU kernels only take channels_last, so the reference is our own
    # channels_last result, transposed; the kernel layout is the same.
    x = randn(2, 6, 5, 3)
    conv = getattr(js.nn, layer)

    def model(x, data_format):
        return conv(x, 4, 3, strides=2, padding="same", data_format=data_format, name="c")

    last = js.transform(lambda x: model(x, "channels_last"))
    params = last.init(0, x)
    first = js.transform(lambda x: model(x, "channels_first"))
    nchw = jnp.transpose(x, (0, 3, 1, 2))
    assert jax.tree.map(jnp.shape, first.init(0, nchw)) == jax.tree.map(jnp.shape, params)
    out = jax.jit(first.apply)(params, nchw)
    close(jnp.transpose(out, (0, 2, 3, 1)), last.apply(params, x))


def test_conv_reuse_shares_the_kernel():
    def model(a, b):
        first = js.nn.conv2d(a, 2, 3, name="shared")
        return first, js.nn.conv2d(b, 2, 3, name="shared", reuse=True)

    x = randn(1, 5, 5, 3)
    runs = run_both(model, x, x)
    assert set(js.flatten(runs.params)) == {"shared/kernel", "shared/bias"}
    close(runs.out_jit[0], runs.out_jit[1])


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda x: js.nn.conv2d(x, 2, 3, padding="causal"), "padding must be 'valid' or 'same'"),
        (lambda x: js.nn.conv2d(x[0], 2, 3), r"rank 4 .* got shape \(5, 5, 3\)"),
        (lambda x: js.nn.conv2d(x, 2, (3, 3, 3)), "kernel_size must be a positive int or 2"),
        (lambda x: js.nn.conv2d(x, 2, 3, data_format="NHWC"), "channels_last"),
    ],
)
def test_conv_bad_arguments_are_value_errors_that_say_what_is_allowed(call, words):
    with pytest.raises(ValueError, match=words):
        js.transform(call).init(0, jnp.ones((1, 5, 5, 3)))
