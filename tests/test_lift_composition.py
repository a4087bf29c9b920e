"""Lifted transforms inside one another, and outside any transform, where
they are the raw JAX ones (DESIGN §6).
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js

from .conftest import assert_bit_identical, paths, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
N = 4  # layers in a layer stack
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
XS = jax.random.normal(jax.random.key(42), (T, B, D))
X = jax.random.normal(jax.random.key(7), (B, D))


def test_scan_inside_layer_stack():
    def rnn_layer(hs):
        def step(h, x):
            w = js.get_variable("w", [D, D])
            h = jnp.tanh(h @ w + x)
            return h, h

        return js.scan(step, jnp.zeros(hs.shape[1:]), hs)[1]

    def stacked(xs):
        with js.variable_scope("deep"):
            return js.layer_stack(3)(rnn_layer)(xs)

    def unrolled(xs):
        with js.variable_scope("deep"):
            for i in range(3):
                with js.variable_scope(f"layer_{i}"):
                    xs = rnn_layer(xs)
        return xs

    runs = run_both(stacked, XS)
    assert jax.tree.map(jnp.shape, runs.params) == {"deep": {"w": (3, D, D)}}
    unrolled_params = {"deep": js.unstack_layers(runs.params["deep"])}
    assert_bit_identical(unrolled_params, js.transform(unrolled).init(0, XS))
    reference = js.transform(unrolled).apply(unrolled_params, XS)
    np.testing.assert_allclose(runs.out_jit, reference, **TOL)


def test_scan_inside_scan():
    def inner_step(h, x):
        with js.variable_scope("inner"):
            w = js.get_variable("w", [D])
        return h + w * x, None

    def outer_step(h, xs):
        with js.variable_scope("outer"):
            v = js.get_variable("v", [D])
        return js.scan(inner_step, h * v, xs)[0], None

    def nested(xss):
        return js.scan(outer_step, jnp.zeros((B, D)), xss)[0]

    def unrolled(xss):
        h = jnp.zeros((B, D))
        for i in range(xss.shape[0]):
            with js.variable_scope("outer", reuse=js.AUTO_REUSE):
                v = js.get_variable("v", [D])
            h = h * v
            for j in range(xss.shape[1]):
                with js.variable_scope("inner", reuse=js.AUTO_REUSE):
                    w = js.get_variable("w", [D])
                h = h + w * xss[i, j]
        return h

    xss = jnp.stack([XS, 0.5 * XS], axis=1)  # (outer steps, inner steps, B, D)
    runs = run_both(nested, xss)
    assert paths(runs.params) == ["inner/w", "outer/v"]
    assert_bit_identical(runs.params, js.transform(unrolled).init(0, xss))
    reference = js.transform(unrolled).apply(runs.params, xss)
    np.testing.assert_allclose(runs.out_jit, reference, **TOL)


def test_vmap_and_remat_inside_scan():
    def step(h, x):
        return js.remat(lambda h: jnp.tanh(h @ js.get_variable("w", [D, D])))(h) + x, None

    def model(xs):
        return js.vmap(lambda xs: js.scan(step, jnp.zeros(D), xs)[0], in_axes=1)(xs)

    def reference(params, xs):
        h = jnp.zeros((B, D))
        for x in xs:
            h = jnp.tanh(h @ params["w"]) + x
        return h

    runs = run_both(model, XS)
    assert jax.tree.map(jnp.shape, runs.params) == {"w": (D, D)}
    np.testing.assert_allclose(runs.out_jit, reference(runs.params, XS), **TOL)


# --- Outside any transform the lifted functions are the raw JAX ones ----------


def test_scan_outside_a_transform_is_lax_scan():
    def step(c, x):
        return c * 0.5 + x, jnp.sin(c)

    for kwargs in (dict(), dict(reverse=True), dict(unroll=2)):
        assert_bit_identical(
            js.scan(step, jnp.zeros((B, D)), XS, **kwargs),
            jax.lax.scan(step, jnp.zeros((B, D)), XS, **kwargs),
        )
    assert_bit_identical(
        js.scan(lambda c, _: (c + 1, c), 0, None, length=3),
        jax.lax.scan(lambda c, _: (c + 1, c), 0, None, length=3),
    )


def test_vmap_outside_a_transform_is_jax_vmap():
    def f(x, y):
        return x * y, jnp.sum(x)

    assert_bit_identical(
        js.vmap(f, in_axes=(1, None), out_axes=(0, 0))(XS, 2.0),
        jax.vmap(f, in_axes=(1, None), out_axes=(0, 0))(XS, 2.0),
    )


def test_remat_outside_a_transform_is_jax_checkpoint():
    def f(x):
        return jnp.sum(jnp.sin(x) ** 2)

    assert_bit_identical(jax.grad(js.remat(f))(X), jax.grad(jax.checkpoint(f))(X))
    assert_bit_identical(js.remat(f)(X), f(X))


def test_cond_outside_a_transform_is_lax_cond():
    for pred in (True, False):
        assert_bit_identical(
            js.cond(pred, jnp.sin, jnp.cos, X), jax.lax.cond(pred, jnp.sin, jnp.cos, X)
        )


def test_while_loop_outside_a_transform_is_lax_while_loop():
    def body(c):
        return c[0] + 1, c[1] * 2.0

    assert_bit_identical(
        js.while_loop(lambda c: c[0] < 4, body, (0, X)),
        jax.lax.while_loop(lambda c: c[0] < 4, body, (0, X)),
    )


def test_layer_stack_outside_a_transform_applies_f_num_layers_times():
    def layer(x, y):
        return jnp.tanh(x) + y

    expected = X
    for _ in range(N):
        expected = layer(expected, 1.0)
    np.testing.assert_allclose(js.layer_stack(N)(layer)(X, 1.0), expected, **TOL)
