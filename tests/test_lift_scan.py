"""``js.scan`` (DESIGN §6): an RNN over time against the same cell unrolled in
a Python loop; scopes, reuse, initializers and ``js.next_rng_key`` inside a
scan body behave as outside. Programs run through ``init``, eager ``apply``
and jitted ``apply``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import assert_bit_identical, assert_close, paths, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
N = 4  # layers in a layer stack
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
XS = jax.random.normal(jax.random.key(42), (T, B, D))
X = jax.random.normal(jax.random.key(7), (B, D))


def key_data(key):
    return jax.random.key_data(key)


# --- An LSTM over time: js.scan against the unrolled loop ---------------------


def lstm_cell(state, x):
    h, c = state
    with js.variable_scope("lstm"):
        kernel = js.get_variable("kernel", [x.shape[-1] + HIDDEN, 4 * HIDDEN])
        bias = js.get_variable(
            "bias", [4 * HIDDEN], initializer=js.initializers.random_normal(stddev=0.1)
        )
    i, f, g, o = jnp.split(jnp.concatenate([x, h], -1) @ kernel + bias, 4, -1)
    c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h


def zero_state(xs):
    return jnp.zeros((xs.shape[1], HIDDEN)), jnp.zeros((xs.shape[1], HIDDEN))


def scanned_lstm(xs):
    with js.variable_scope("rnn"):
        (h, _), hs = js.scan(lstm_cell, zero_state(xs), xs)
    return hs, h


def unrolled_lstm_reuse_true(xs):
    """TF1's static_rnn: reuse=True on every step after the first."""
    state, hs = zero_state(xs), []
    for t in range(xs.shape[0]):
        with js.variable_scope("rnn", reuse=True if t > 0 else None):
            state, h = lstm_cell(state, xs[t])
        hs.append(h)
    return jnp.stack(hs), state[0]


def unrolled_lstm_auto_reuse(xs):
    state, hs = zero_state(xs), []
    for t in range(xs.shape[0]):
        with js.variable_scope("rnn", reuse=js.AUTO_REUSE):
            state, h = lstm_cell(state, xs[t])
        hs.append(h)
    return jnp.stack(hs), state[0]


UNROLLED_LSTMS = [
    pytest.param(unrolled_lstm_reuse_true, id="reuse_true"),
    pytest.param(unrolled_lstm_auto_reuse, id="auto_reuse"),
]


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_params_have_the_unrolled_names_and_bit_identical_values(unrolled):
    scanned = js.transform(scanned_lstm).init(0, XS)
    assert paths(scanned) == ["rnn/lstm/bias", "rnn/lstm/kernel"]
    assert_bit_identical(scanned, js.transform(unrolled).init(0, XS))


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_outputs_equal_unrolled_in_init_and_jitted_apply(unrolled):
    scanned, reference = run_both(scanned_lstm, XS), run_both(unrolled, XS)
    assert_close(scanned.out_init, reference.out_init, **TOL)
    assert_close(scanned.out_jit, reference.out_jit, **TOL)
    assert scanned.out_jit[0].shape == (T, B, HIDDEN)


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_gradients_equal_unrolled_for_params_and_inputs(unrolled):
    params = js.transform(scanned_lstm).init(0, XS)

    def grads(model):
        def loss(params, xs):
            hs, h = js.transform(model).apply(params, xs)
            return jnp.sum(hs**2) + jnp.sum(jnp.sin(h))

        return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, XS)

    (scan_dparams, scan_dxs), (ref_dparams, ref_dxs) = grads(scanned_lstm), grads(unrolled)
    assert_close(scan_dparams, ref_dparams, **TOL)
    np.testing.assert_allclose(scan_dxs, ref_dxs, **TOL)
    assert float(jnp.abs(scan_dxs).sum()) > 0  # the inputs do reach the loss


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_jitted_init_gives_the_unrolled_jitted_init_params(unrolled):
    scanned = jax.jit(js.transform(scanned_lstm).init)(0, XS)
    assert_bit_identical(scanned, jax.jit(js.transform(unrolled).init)(0, XS))


# --- Scopes, reuse, initializers, regularizers, getters inside lifted bodies ---


def one_step_of(body):
    """The model ``body`` would be if run once in Python instead of a scan:
    the reference for names and initial values."""

    def model(xs):
        return body(jnp.zeros(D), xs[0])

    return model


def scan_of(body):
    def model(xs):
        return js.scan(body, jnp.zeros(D), xs)

    return model


def scoped_body(h, x):
    with js.variable_scope("cell"):
        with js.variable_scope("inner"):
            w = js.get_variable("w", [D, D])
        with js.variable_scope(None, default_name="dense"):
            b = js.get_variable("b", [D])
        with js.variable_scope(None, default_name="dense"):
            c = js.get_variable("c", [D])
    return jnp.tanh(h @ w + b + c + x[0]), jnp.float32(0.0)


def test_scopes_inside_a_scan_body_name_variables_as_outside():
    def around(body):
        def model(xs):
            with js.variable_scope(None, default_name="dense"):
                js.get_variable("before", [1])
            with js.variable_scope("rnn"):
                out = body(xs)
            with js.variable_scope(None, default_name="dense"):
                js.get_variable("after", [1])
            return out

        return model

    scanned = run_both(around(scan_of(scoped_body)), XS).params
    reference = js.transform(around(one_step_of(scoped_body))).init(0, XS)
    assert paths(scanned) == [
        "dense/before",
        "dense_1/after",
        "rnn/cell/dense/b",
        "rnn/cell/dense_1/c",
        "rnn/cell/inner/w",
    ]
    assert_bit_identical(scanned, reference)


def test_reuse_true_inside_a_scan_body_finds_the_variable_created_before():
    def model(xs):
        with js.variable_scope("shared"):
            w = js.get_variable("w", [D])

        def step(h, x):
            with js.variable_scope("shared", reuse=True):
                w_inside = js.get_variable("w", [D])
            return h + x[0] * w_inside, None

        return w, js.scan(step, jnp.zeros(D), XS)[0]

    runs = run_both(model, XS)
    assert paths(runs.params) == ["shared/w"]
    w, out = runs.out_jit
    np.testing.assert_allclose(out, jnp.sum(XS[:, 0], 0) * w, **TOL)


def test_auto_reuse_inside_a_scan_body_creates_once_then_reuses():
    def model(xs):
        def step(h, x):
            with js.variable_scope("cell", reuse=js.AUTO_REUSE):
                w1 = js.get_variable("w", [D])
                w2 = js.get_variable("w", [D])
            return h + x[0] * (w1 - w2), None

        out = js.scan(step, jnp.zeros(D), xs)[0]
        with js.variable_scope("cell", reuse=js.AUTO_REUSE):
            w = js.get_variable("w", [D])
        return out, w

    runs = run_both(model, XS)
    assert paths(runs.params) == ["cell/w"]
    np.testing.assert_array_equal(runs.out_jit[0], jnp.zeros(D))
    np.testing.assert_array_equal(runs.out_jit[1], runs.params["cell"]["w"])


def test_reuse_true_inside_a_scan_body_of_a_missing_variable_raises_as_outside():
    def model(xs):
        def step(h, x):
            with js.variable_scope("cell", reuse=True):
                return h + js.get_variable("w", [D]), None

        return js.scan(step, jnp.zeros(D), xs)[0]

    with pytest.raises(errors.VariableMissingError, match="cell/w"):
        js.transform(model).init(0, XS)


def test_reuse_variables_inside_a_scan_body_lets_the_body_obtain_a_name_twice():
    def model(xs):
        def step(h, x):
            with js.variable_scope("cell") as scope:
                w = js.get_variable("w", [D])
                scope.reuse_variables()
                return h + x[0] * (js.get_variable("w", [D]) - w), None

        return js.scan(step, jnp.zeros(D), xs)[0]

    runs = run_both(model, XS)
    assert paths(runs.params) == ["cell/w"]


# (scope initializer, the variable's initializer made inside the body, shape)
INITIALIZERS = [
    pytest.param(js.initializers.constant(0.5), lambda: None, [D], id="scope_initializer"),
    pytest.param(None, lambda: js.initializers.constant(0.5), [D], id="explicit_initializer"),
    pytest.param(None, lambda: [0.5] * D, None, id="concrete_list"),
    pytest.param(None, lambda: np.full(D, 0.5, np.float32), None, id="concrete_numpy"),
]


def test_a_jax_array_built_inside_a_lifted_body_as_initializer_is_a_clear_error():
    """The body is traced abstractly during init, so a jax array it builds is a
    value of that trace; numpy values and initializer functions work."""

    def model(xs):
        def step(h, x):
            w = js.get_variable("w", initializer=jnp.full(D, 0.5))
            return h + w * x[0], None

        with js.variable_scope("cell"):
            return js.scan(step, jnp.zeros(D), xs)[0]

    with pytest.raises(js.errors.InitializerError, match=r"cell/w[\s\S]*numpy array"):
        js.transform(model).init(0, XS)


@pytest.mark.parametrize(("scope_initializer", "make_initializer", "shape"), INITIALIZERS)
def test_initializers_inside_a_scan_body_apply_as_outside(
    scope_initializer, make_initializer, shape
):
    def model(xs):
        def step(h, x):
            w = js.get_variable("w", shape, initializer=make_initializer())
            return h + w * x[0], None

        with js.variable_scope("cell", initializer=scope_initializer):
            return js.scan(step, jnp.zeros(D), xs)[0]

    runs = run_both(model, XS)
    np.testing.assert_array_equal(runs.params["cell"]["w"], jnp.full(D, 0.5))
    np.testing.assert_allclose(runs.out_jit, 0.5 * jnp.sum(XS[:, 0], 0), **TOL)


def doubled_base(key, shape, dtype):
    """An initializer that itself obtains a variable (as TF1 code may)."""
    return 2.0 * js.get_variable("base", shape, dtype, initializer=js.initializers.ones)


def cell_with_a_derived_initializer(h, x):
    w = js.get_variable("w", [D], initializer=doubled_base)
    return h + w * x, None


def test_an_initializer_calling_get_variable_works_inside_scan_as_outside():
    def scanned(xs):
        with js.variable_scope("cell"):
            return js.scan(cell_with_a_derived_initializer, jnp.zeros(D), xs[:, 0])[0]

    def unrolled(xs):
        h = jnp.zeros(D)
        for t in range(T):
            with js.variable_scope("cell", reuse=js.AUTO_REUSE):
                h, _ = cell_with_a_derived_initializer(h, xs[t, 0])
        return h

    runs = run_both(scanned, XS)
    assert_bit_identical(runs.params, js.transform(unrolled).init(0, XS))
    np.testing.assert_array_equal(runs.params["cell"]["w"], jnp.full(D, 2.0))
    np.testing.assert_allclose(runs.out_jit, 2.0 * jnp.sum(XS[:, 0], 0), **TOL)


def test_an_initializer_calling_get_variable_inside_layer_stack_gets_its_layers_slice():
    def model(x):
        @js.layer_stack(N)
        def layer(x):
            return x * js.get_variable("w", [D], initializer=doubled_base)

        return layer(x)

    runs = run_both(model, X)
    np.testing.assert_array_equal(runs.params["base"], jnp.ones((N, D)))
    np.testing.assert_array_equal(runs.params["w"], jnp.full((N, D), 2.0))
    np.testing.assert_allclose(runs.out_jit, X * 2.0**N, **TOL)


def test_explicit_initializer_inside_a_scan_body_overrides_the_scope_one():
    def model(xs):
        def step(h, x):
            w = js.get_variable("w", [D], initializer=js.initializers.ones)
            v = js.get_variable("v", [D])
            return h + w + v, None

        with js.variable_scope("cell", initializer=js.initializers.zeros):
            return js.scan(step, jnp.zeros(D), xs)[0]

    params = run_both(model, XS).params["cell"]
    np.testing.assert_array_equal(params["w"], jnp.ones(D))
    np.testing.assert_array_equal(params["v"], jnp.zeros(D))


def scan_keys(xs):
    def step(carry, x):
        return carry, key_data(js.next_rng_key())

    with js.variable_scope("sampler"):
        return js.scan(step, 0.0, xs)[1]


def test_next_rng_key_inside_scan_differs_per_iteration():
    keys = run_both(scan_keys, XS, rng=3, apply_rng=3).out_jit
    assert keys.shape == (T, 2)
    assert len({tuple(np.asarray(k)) for k in keys}) == T


def test_next_rng_key_inside_scan_is_deterministic():
    apply = jax.jit(js.transform(scan_keys).apply)
    np.testing.assert_array_equal(apply({}, XS, rng=3), apply({}, XS, rng=3))
    assert not np.array_equal(apply({}, XS, rng=3), apply({}, XS, rng=4))


def test_next_rng_key_draws_twice_in_one_iteration_differ():
    def model(xs):
        def step(carry, x):
            return carry, (key_data(js.next_rng_key()), key_data(js.next_rng_key()))

        return js.scan(step, 0.0, xs)[1]

    first, second = js.transform(model).apply({}, XS, rng=0)
    assert not np.any(np.all(first == second, axis=-1))


def test_next_rng_key_inside_scan_without_rng_is_a_missing_rng_error():
    with pytest.raises(errors.MissingRNGError, match="rng="):
        js.transform(scan_keys).apply({}, XS)
