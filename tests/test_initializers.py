"""``js.initializers``: TF1's initializers under their TF1 names (DESIGN.md §3).

The first part checks each initializer against TF1's documented semantics
(fans, limits, standard deviations); the second, where TensorFlow is
installed, compares distribution statistics over large samples with
``tf.compat.v1``'s initializers. Random values are never compared exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

init_lib = js.initializers
KEY = jax.random.key(0)
# The standard deviation of a unit normal truncated at +-2 (TF1's constant).
TRUNCATED_STD = 0.87962566103423978
# A few shapes shared by the tests below, so each sampler compiles once per
# shape: fan_in 100 and fan_out 400 for the matrix and the 3-d kernel.
MATRIX, KERNEL, VECTOR = (100, 400), (5, 20, 80), (40_000,)
SHAPES = {"matrix": MATRIX, "kernel": KERNEL, "vector": VECTOR}


def sample(init, shape, dtype=jnp.float32, key=KEY):
    return np.asarray(init(key, shape, dtype), np.float64)


def scalar_samples(init, n=1000):
    """``n`` scalars drawn with ``n`` keys."""
    keys = jax.random.split(KEY, n)
    return np.asarray(jax.vmap(lambda k: init(k, (), jnp.float32))(keys), np.float64)


def tf1_fans(shape):
    """TF1's ``_compute_fans``: a scalar's fans are 1, a vector's its length."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def tf1_scale_denominator(shape, mode):
    fan_in, fan_out = tf1_fans(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


# --- zeros, ones, constant --------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.bool_, jnp.bfloat16])
def test_zeros_is_an_initializer(dtype):
    value = init_lib.zeros(KEY, (2, 3), dtype)
    assert value.shape == (2, 3) and value.dtype == dtype
    assert not np.asarray(value).any()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.float16])
def test_ones_is_an_initializer(dtype):
    value = init_lib.ones(KEY, (4,), dtype)
    assert value.dtype == dtype
    np.testing.assert_array_equal(value, np.ones(4))


def test_constant_scalar_fills_the_shape():
    value = init_lib.constant(0.25)(KEY, (2, 2), jnp.float32)
    np.testing.assert_array_equal(value, np.full((2, 2), 0.25))


def test_constant_list_of_the_right_shape_is_used_as_is():
    value = init_lib.constant([[1, 2], [3, 4]])(KEY, (2, 2), jnp.float32)
    np.testing.assert_array_equal(value, [[1, 2], [3, 4]])


def test_constant_flat_list_is_reshaped_to_the_shape():
    value = init_lib.constant([1, 2, 3, 4, 5, 6])(KEY, (2, 3), jnp.float32)
    np.testing.assert_array_equal(value, [[1, 2, 3], [4, 5, 6]])


def test_constant_casts_to_the_requested_dtype():
    value = init_lib.constant([1.7, 2.2])(KEY, (2,), jnp.int32)
    assert value.dtype == jnp.int32
    np.testing.assert_array_equal(value, [1, 2])


def test_constant_with_a_different_number_of_elements_is_a_value_error():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        init_lib.constant([1, 2, 3, 4])(KEY, (2, 3), jnp.float32)


def test_constant_accepts_tf1_keyword_value():
    np.testing.assert_array_equal(init_lib.constant(value=2.0)(KEY, (1,), jnp.float32), [2.0])


# --- random_normal, truncated_normal, random_uniform -----------------------


def test_random_normal_has_the_given_mean_and_stddev():
    value = sample(init_lib.random_normal(1.5, 0.5), MATRIX)
    np.testing.assert_allclose(value.mean(), 1.5, atol=0.01)
    np.testing.assert_allclose(value.std(), 0.5, rtol=0.02)


def test_random_normal_defaults_to_standard_normal():
    value = sample(init_lib.random_normal(), MATRIX)
    np.testing.assert_allclose(value.mean(), 0.0, atol=0.02)
    np.testing.assert_allclose(value.std(), 1.0, rtol=0.02)


def test_random_normal_takes_tf1_keywords():
    value = sample(init_lib.random_normal(mean=-2.0, stddev=0.1), MATRIX)
    np.testing.assert_allclose(value.mean(), -2.0, atol=0.005)
    np.testing.assert_allclose(value.std(), 0.1, rtol=0.02)


def test_truncated_normal_stays_within_two_stddevs_of_the_mean():
    value = sample(init_lib.truncated_normal(1.0, 2.0), MATRIX)
    assert value.min() >= 1.0 - 4.0 and value.max() <= 1.0 + 4.0
    assert value.min() < 1.0 - 3.9 and value.max() > 1.0 + 3.9  # cut at 2 stddevs, not sooner


def test_truncated_normal_has_the_spread_of_a_truncated_normal():
    value = sample(init_lib.truncated_normal(mean=1.0, stddev=2.0), MATRIX)
    np.testing.assert_allclose(value.mean(), 1.0, atol=0.02)
    np.testing.assert_allclose(value.std(), 2.0 * TRUNCATED_STD, rtol=0.02)


def test_random_uniform_lies_in_minval_maxval():
    value = sample(init_lib.random_uniform(-0.3, 0.7), MATRIX)
    assert value.min() >= -0.3 and value.max() < 0.7
    assert value.min() < -0.299 and value.max() > 0.699
    np.testing.assert_allclose(value.mean(), 0.2, atol=0.01)


def test_random_uniform_defaults_to_unit_interval():
    value = sample(init_lib.random_uniform(), MATRIX)
    assert value.min() >= 0.0 and value.max() < 1.0
    assert value.max() > 0.999


def test_random_uniform_takes_tf1_keywords():
    value = sample(init_lib.random_uniform(minval=2.0, maxval=3.0), MATRIX)
    assert value.min() >= 2.0 and value.max() < 3.0


# --- Variance scaling: glorot_uniform, glorot_normal, variance_scaling ------


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_glorot_uniform_limit_uses_tf1_fans(shape):
    fan_in, fan_out = tf1_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    value = sample(init_lib.glorot_uniform(), shape)
    assert np.abs(value).max() <= limit
    assert np.abs(value).max() > 0.99 * limit
    np.testing.assert_allclose(value.std(), limit / np.sqrt(3), rtol=0.02)


def test_glorot_uniform_on_scalars_uses_fans_of_one():
    values = scalar_samples(init_lib.glorot_uniform())
    limit = np.sqrt(6.0 / 2.0)
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.98 * limit


@pytest.mark.parametrize("shape", [MATRIX, VECTOR], ids=["matrix", "vector"])
def test_glorot_normal_stddev_uses_tf1_fans(shape):
    fan_in, fan_out = tf1_fans(shape)
    stddev = np.sqrt(2.0 / (fan_in + fan_out))
    value = sample(init_lib.glorot_normal(), shape)
    np.testing.assert_allclose(value.std(), stddev, rtol=0.03)
    # TF1's glorot_normal is truncated at two (pre-correction) stddevs.
    assert np.abs(value).max() <= 2 * stddev / TRUNCATED_STD * (1 + 1e-6)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_variance_scaling_uniform_limit(mode, shape):
    n = tf1_scale_denominator(shape, mode)
    limit = np.sqrt(3.0 * 2.0 / n)
    value = sample(init_lib.variance_scaling(2.0, mode, "uniform"), shape)
    assert np.abs(value).max() <= limit
    assert np.abs(value).max() > 0.98 * limit


@pytest.mark.parametrize(
    "distribution",
    ["truncated_normal", "normal", "untruncated_normal"],
)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
def test_variance_scaling_normal_stddev(mode, distribution):
    shape = MATRIX
    stddev = np.sqrt(2.0 / tf1_scale_denominator(shape, mode))
    value = sample(
        init_lib.variance_scaling(scale=2.0, mode=mode, distribution=distribution), shape
    )
    np.testing.assert_allclose(value.std(), stddev, rtol=0.03)


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal"])
def test_variance_scaling_truncated_distributions_are_cut_at_two_stddevs(distribution):
    shape = MATRIX
    bound = 2 * np.sqrt(1.0 / 100) / TRUNCATED_STD
    value = sample(init_lib.variance_scaling(1.0, "fan_in", distribution), shape)
    assert np.abs(value).max() <= bound * (1 + 1e-6)


def test_variance_scaling_untruncated_normal_has_tails_beyond_two_stddevs():
    value = sample(init_lib.variance_scaling(1.0, "fan_in", "untruncated_normal"), MATRIX)
    assert np.abs(value).max() > 3 * np.sqrt(1.0 / 100)


def test_variance_scaling_defaults_are_tf1s():
    """TF1: scale=1.0, mode="fan_in", distribution="truncated_normal"."""
    shape = MATRIX
    value = sample(init_lib.variance_scaling(), shape)
    np.testing.assert_allclose(value.std(), np.sqrt(1.0 / 100), rtol=0.03)
    assert np.abs(value).max() <= 2 * np.sqrt(1.0 / 100) / TRUNCATED_STD * (1 + 1e-6)


# --- orthogonal ---------------------------------------------------------------


def test_orthogonal_columns_are_orthonormal_times_gain():
    """A (3, 4, 5) kernel is a (12, 5) matrix with orthogonal columns (TF1)."""
    value = sample(init_lib.orthogonal(gain=1.5), (3, 4, 5))
    flat = value.reshape(12, 5)
    np.testing.assert_allclose(flat.T @ flat, 2.25 * np.eye(5), atol=1e-4)


def test_orthogonal_wide_matrix_has_orthonormal_rows():
    value = sample(init_lib.orthogonal(), (3, 8))
    np.testing.assert_allclose(value @ value.T, np.eye(3), atol=1e-5)
    assert value.shape == (3, 8)


def test_orthogonal_needs_two_dimensions():
    with pytest.raises(js.errors.InitializerError, match=r"two dims, got \(4,\)") as info:
        init_lib.orthogonal()(KEY, (4,), jnp.float32)
    assert isinstance(info.value, ValueError)  # TF1's type


# --- Every initializer ------------------------------------------------------

ALL = {
    "zeros": init_lib.zeros,
    "ones": init_lib.ones,
    "constant": init_lib.constant(0.5),
    "random_normal": init_lib.random_normal(),
    "truncated_normal": init_lib.truncated_normal(),
    "random_uniform": init_lib.random_uniform(),
    "glorot_uniform": init_lib.glorot_uniform(),
    "glorot_normal": init_lib.glorot_normal(),
    "variance_scaling": init_lib.variance_scaling(),
    "orthogonal": init_lib.orthogonal(),
}


def shape_for(name):
    """The shapes the statistical tests above use, so compilations are shared."""
    return (3, 4, 5) if name == "orthogonal" else MATRIX


@pytest.mark.parametrize("name", ALL)
def test_initializer_returns_the_requested_shape_and_float32(name):
    value = ALL[name](KEY, shape_for(name), jnp.float32)
    assert value.shape == shape_for(name)
    assert value.dtype == jnp.float32


# The initializers that add arithmetic of their own to jax's samplers.
# (orthogonal has no bfloat16 version: jax's QR has no bfloat16 kernel, nor has TF1's.)
@pytest.mark.parametrize("name", ["constant", "random_normal", "truncated_normal"])
def test_initializer_returns_the_requested_bfloat16(name):
    value = ALL[name](KEY, MATRIX, jnp.bfloat16)
    assert value.shape == MATRIX
    assert value.dtype == jnp.bfloat16


@pytest.mark.parametrize("name", ALL)
def test_initializer_is_a_deterministic_function_of_the_key(name):
    init = ALL[name]
    a = np.asarray(init(jax.random.key(3), shape_for(name), jnp.float32))
    b = np.asarray(init(jax.random.key(3), shape_for(name), jnp.float32))
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("zeros", "ones", "constant")])
def test_random_initializer_differs_between_keys(name):
    init = ALL[name]
    a = init(jax.random.key(1), shape_for(name), jnp.float32)
    b = init(jax.random.key(2), shape_for(name), jnp.float32)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_initializer_fills_a_zero_size_shape(name):
    shape = (0, 3) if name != "orthogonal" else (0, 3, 2)
    value = ALL[name](KEY, shape, jnp.float32)
    assert value.shape == shape and value.dtype == jnp.float32


def test_a_zero_size_variable_with_the_default_initializer_is_created():
    def model():
        return js.get_variable("empty", [0, 3]), js.get_variable("count", [0], jnp.int32)

    f = js.transform(model)
    params = f.init(0)
    assert params["empty"].shape == (0, 3) and params["count"].shape == (0,)
    empty, count = jax.jit(f.apply)(params)
    assert empty.shape == (0, 3) and count.dtype == jnp.int32


REFUSING = {
    "orthogonal-on-a-vector": ([3], jnp.float32, init_lib.orthogonal(), "two dims"),
    "glorot_uniform-on-int32": ([3, 3], jnp.int32, init_lib.glorot_uniform(), "int32"),
    "truncated_normal-on-int32": ([3], jnp.int32, init_lib.truncated_normal(), "int32"),
    "random_normal-on-int32": ([3], jnp.int32, init_lib.random_normal(), "int32"),
    "jax-uniform-on-int32": ([3], jnp.int32, jax.nn.initializers.uniform(), "int32"),
}


@pytest.mark.parametrize("case", REFUSING)
def test_an_initializer_refusing_the_shape_or_dtype_names_the_variable(case):
    shape, dtype, init, word = REFUSING[case]

    def model():
        with js.variable_scope("enc"):
            return js.get_variable("w", shape, dtype, initializer=init)

    with pytest.raises(js.errors.InitializerError) as info:
        js.transform(model).init(0)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "enc/w" in message and word in message and "Fix" in message


@pytest.mark.parametrize(
    "kwargs", [{"mode": "fan_bad"}, {"distribution": "cauchy"}], ids=["mode", "distribution"]
)
def test_variance_scaling_refuses_a_bad_argument_when_built(kwargs):
    with pytest.raises(js.errors.ArgumentError, match=repr(next(iter(kwargs.values())))) as info:
        init_lib.variance_scaling(**kwargs)
    assert isinstance(info.value, ValueError)  # TF1's type


# --- Against tf.compat.v1 ---------------------------------------------------
# Statistics over large samples, never exact random values.


@pytest.fixture(scope="module")
def v1():
    tf = pytest.importorskip("tensorflow")
    tf.random.set_seed(0)
    return tf.compat.v1


def tf_sample(initializer, shape):
    return np.asarray(initializer(list(shape), dtype="float32"), np.float64)


@pytest.mark.parametrize("shape", [(2, 3), (4,), ()], ids=["matrix", "vector", "scalar"])
def test_tf_zeros_and_ones_match(v1, shape):
    np.testing.assert_array_equal(
        sample(init_lib.zeros, shape), tf_sample(v1.zeros_initializer(), shape)
    )
    np.testing.assert_array_equal(
        sample(init_lib.ones, shape), tf_sample(v1.ones_initializer(), shape)
    )


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (0.3, (2, 2)),
        ([1, 2, 3, 4, 5, 6], (2, 3)),
        ([[1, 2], [3, 4]], (2, 2)),
        ([1, 2, 3, 4], (4, 1)),
    ],
    ids=["scalar", "reshaped", "as_is", "column"],
)
def test_tf_constant_matches(v1, value, shape):
    ours = sample(init_lib.constant(value), shape)
    theirs = tf_sample(v1.constant_initializer(value), shape)
    np.testing.assert_array_equal(ours, theirs)


def test_tf_random_normal_statistics_match(v1):
    ours = sample(init_lib.random_normal(0.5, 2.0), MATRIX)
    theirs = tf_sample(v1.random_normal_initializer(0.5, 2.0), MATRIX)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.06)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.02)


def test_tf_truncated_normal_statistics_match(v1):
    ours = sample(init_lib.truncated_normal(1.0, 2.0), MATRIX)
    theirs = tf_sample(v1.truncated_normal_initializer(1.0, 2.0), MATRIX)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.05)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.02)
    np.testing.assert_allclose([ours.min(), ours.max()], [theirs.min(), theirs.max()], atol=0.05)


def test_tf_random_uniform_statistics_match(v1):
    ours = sample(init_lib.random_uniform(-0.3, 0.7), MATRIX)
    theirs = tf_sample(v1.random_uniform_initializer(-0.3, 0.7), MATRIX)
    np.testing.assert_allclose([ours.min(), ours.max()], [theirs.min(), theirs.max()], atol=1e-3)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.01)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_tf_glorot_uniform_statistics_match(v1, shape):
    ours = sample(init_lib.glorot_uniform(), shape)
    theirs = tf_sample(v1.glorot_uniform_initializer(), shape)
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(), rtol=0.01)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.03)


def test_tf_glorot_uniform_on_scalars_uses_fans_of_one(v1):
    """The scalar rule our fans follow is TF1's: its scalars reach sqrt(3)."""
    tf_init = v1.glorot_uniform_initializer()
    theirs = np.array([float(tf_init([], dtype="float32")) for _ in range(200)])
    limit = np.sqrt(6.0 / 2.0)
    assert np.abs(theirs).max() <= limit
    assert np.abs(theirs).max() > 0.9 * limit


@pytest.mark.parametrize("shape", [MATRIX, VECTOR], ids=["matrix", "vector"])
def test_tf_glorot_normal_statistics_match(v1, shape):
    ours = sample(init_lib.glorot_normal(), shape)
    theirs = tf_sample(v1.glorot_normal_initializer(), shape)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.03)
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(), rtol=0.02)


VARIANCE_SCALING_CASES = [
    pytest.param(shape, mode, distribution, id=f"{name}-{mode}-{distribution}")
    for distribution in ("truncated_normal", "normal", "uniform")
    for name, shape, mode in [
        ("matrix", MATRIX, "fan_in"),
        ("matrix", MATRIX, "fan_out"),
        ("matrix", MATRIX, "fan_avg"),
        ("kernel", KERNEL, "fan_out"),
        ("vector", VECTOR, "fan_avg"),
    ]
] + [
    pytest.param(
        MATRIX,
        "fan_in",
        "untruncated_normal",
        id="matrix-fan_in-untruncated_normal",
    )
]


@pytest.mark.parametrize(("shape", "mode", "distribution"), VARIANCE_SCALING_CASES)
def test_tf_variance_scaling_statistics_match(v1, shape, mode, distribution):
    ours = sample(init_lib.variance_scaling(2.0, mode, distribution), shape)
    theirs = tf_sample(v1.variance_scaling_initializer(2.0, mode, distribution), shape)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.05)
    if distribution != "untruncated_normal":
        np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(), rtol=0.03)


@pytest.mark.parametrize("shape", [(3, 8), (3, 4, 5)], ids=["wide", "3d"])
def test_tf_orthogonal_gram_matrices_match(v1, shape):
    ours = sample(init_lib.orthogonal(1.5), shape).reshape(-1, shape[-1])
    theirs = tf_sample(v1.orthogonal_initializer(1.5), shape).reshape(-1, shape[-1])
    small = min(ours.shape)
    gram = (lambda m: m.T @ m) if ours.shape[0] >= ours.shape[1] else (lambda m: m @ m.T)
    np.testing.assert_allclose(gram(ours), 2.25 * np.eye(small), atol=1e-4)
    np.testing.assert_allclose(gram(theirs), 2.25 * np.eye(small), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(ours), np.linalg.norm(theirs), rtol=1e-4)
