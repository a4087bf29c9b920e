"""Regularizers and custom getters inside lifted bodies (DESIGN §6) behave as
outside: a regularizer is recorded once, a getter sees the full name.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
XS = jax.random.normal(jax.random.key(42), (T, B, D))


def l2(v):
    return 0.5 * jnp.sum(v**2)


def scan_with_regularizer(x):
    with js.variable_scope("cell", regularizer=l2):
        out = js.scan(lambda h, xi: (h + js.get_variable("w", [D]) * xi[0], None), x, XS)[0]
    return out


def vmap_with_regularizer(x):
    with js.variable_scope("cell", regularizer=l2):
        return js.vmap(lambda xi: xi * js.get_variable("w", [D]))(XS[:, 0])


def remat_with_regularizer(x):
    with js.variable_scope("cell", regularizer=l2):
        return js.remat(lambda x: x * js.get_variable("w", [D]))(x)


def while_loop_with_regularizer(x):
    def body(carry):
        i, h = carry
        return i + 1, h + js.get_variable("w", [D])

    with js.variable_scope("cell", regularizer=l2):
        return js.while_loop(lambda c: c[0] < T, body, (jnp.int32(0), x))[1]


def cond_with_regularizer(x):
    with js.variable_scope("cell", regularizer=l2):
        return js.cond(True, lambda x: x * js.get_variable("w", [D]), lambda x: x, x)


REGULARIZED = [
    pytest.param(scan_with_regularizer, id="scan"),
    pytest.param(vmap_with_regularizer, id="vmap"),
    pytest.param(remat_with_regularizer, id="remat"),
    pytest.param(while_loop_with_regularizer, id="while_loop"),
    pytest.param(cond_with_regularizer, id="cond"),
]


@pytest.mark.parametrize("model", REGULARIZED)
def test_regularizer_inside_a_lifted_body_is_recorded_once(model):
    def with_losses(x):
        out = model(x)
        return out, js.get_regularization_losses(), js.get_regularization_loss()

    runs = run_both(with_losses, jnp.ones(D))
    w = runs.params["cell"]["w"]
    for _, losses, total in (runs.out_init, runs.out_apply, runs.out_jit):
        assert len(losses) == 1
        np.testing.assert_allclose(losses[0], l2(w), **TOL)
        np.testing.assert_allclose(total, l2(w), **TOL)


def test_custom_getter_inside_a_scan_body_sees_the_full_name_and_shapes_the_value():
    seen = []

    def doubling_getter(getter, name, **kwargs):
        seen.append((name, tuple(kwargs["shape"])))
        return 2.0 * getter(name, **kwargs)

    def model(xs):
        def step(h, x):
            with js.variable_scope("cell"):
                return h + js.get_variable("w", [D]) * x[0], None

        with js.variable_scope("rnn", custom_getter=doubling_getter):
            return js.scan(step, jnp.zeros(D), xs)[0]

    runs = run_both(model, XS)
    assert set(seen) == {("rnn/cell/w", (D,))}
    expected = 2.0 * runs.params["rnn"]["cell"]["w"] * jnp.sum(XS[:, 0], 0)
    np.testing.assert_allclose(runs.out_jit, expected, **TOL)
    np.testing.assert_allclose(runs.out_init, expected, **TOL)


def test_nested_custom_getters_inside_a_scan_body_compose_as_outside():
    def add(amount):
        def getter(getter, name, **kwargs):
            return getter(name, **kwargs) + amount

        return getter

    def scale(getter, name, **kwargs):
        return getter(name, **kwargs) * 10.0

    def body(h, x):
        with js.variable_scope("inner", custom_getter=scale):
            w = js.get_variable("w", [D], initializer=js.initializers.ones)
        return w, w

    def scanned(xs):
        with js.variable_scope("outer", custom_getter=add(1.0)):
            return js.scan(body, jnp.zeros(D), xs)[0]

    def plain(xs):
        with js.variable_scope("outer", custom_getter=add(1.0)):
            return body(jnp.zeros(D), xs[0])[0]

    reference = js.transform(plain).apply({"outer": {"inner": {"w": jnp.ones(D)}}}, XS)
    np.testing.assert_array_equal(run_both(scanned, XS).out_jit, reference)
