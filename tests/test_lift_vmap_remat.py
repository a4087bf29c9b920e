"""``js.vmap`` and ``js.remat`` (DESIGN §6): variables shared across the batch,
per-example keys on request, and ``js.remat`` against the plain function.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js

from .conftest import assert_bit_identical, assert_close, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
XS = jax.random.normal(jax.random.key(42), (T, B, D))
X = jax.random.normal(jax.random.key(7), (B, D))


def key_data(key):
    return jax.random.key_data(key)


def per_example(x):
    with js.variable_scope("embed"):
        w = js.get_variable("w", [D, HIDDEN])
    return jnp.tanh(x @ w)


def test_vmap_shares_variables_across_the_batch():
    def model(xs):
        return js.vmap(per_example)(xs)

    runs = run_both(model, X)
    assert jax.tree.map(jnp.shape, runs.params) == {"embed": {"w": (D, HIDDEN)}}
    assert_bit_identical(runs.params, js.transform(per_example).init(0, X[0]))
    per_row = [js.transform(per_example).apply(runs.params, x) for x in X]
    np.testing.assert_allclose(runs.out_jit, jnp.stack(per_row), **TOL)


def vmap_keys(split_rng):
    def model(xs):
        return js.vmap(lambda x: key_data(js.next_rng_key()), split_rng=split_rng)(xs)

    return model


def test_vmap_split_rng_gives_each_example_its_own_key():
    keys = run_both(vmap_keys(True), XS, apply_rng=0).out_jit
    assert len({tuple(np.asarray(k)) for k in keys}) == T


def test_vmap_without_split_rng_gives_every_example_the_same_key():
    keys = run_both(vmap_keys(False), XS, apply_rng=0).out_jit
    assert len({tuple(np.asarray(k)) for k in keys}) == 1


def test_vmap_passes_in_axes_none_arguments_unbatched():
    def model(xs, bias):
        def f(x, bias):
            return x @ js.get_variable("w", [D, D]) + bias

        return js.vmap(f, in_axes=(0, None))(xs, bias)

    bias = jnp.arange(float(D))
    runs = run_both(model, X, bias)
    np.testing.assert_allclose(runs.out_jit, X @ runs.params["w"] + bias, **TOL)


def test_vmap_passes_a_non_array_argument_under_in_axes_none_as_it_is():
    def model(xs):
        def f(x, activation):
            return getattr(jnp, activation)(x @ js.get_variable("w", [D, D]))

        return js.vmap(f, in_axes=(0, None))(xs, "tanh")

    runs = run_both(model, X)
    np.testing.assert_allclose(runs.out_jit, jnp.tanh(X @ runs.params["w"]), **TOL)


def test_vmap_maps_keyword_arguments_as_jax_vmap_does():
    def model(xs):
        def f(x, scale):
            return (x * scale) @ js.get_variable("w", [D, D])

        return js.vmap(f)(xs, scale=xs)

    runs = run_both(model, X)
    np.testing.assert_allclose(runs.out_jit, (X * X) @ runs.params["w"], **TOL)


def test_remat_passes_keyword_arguments_through():
    def model(x):
        return js.remat(lambda x, scale: (x * scale) @ js.get_variable("w", [D, D]))(x, scale=2.0)

    runs = run_both(model, X)
    np.testing.assert_allclose(runs.out_jit, (2.0 * X) @ runs.params["w"], **TOL)


def mlp_body(x):
    for name in ("a", "b"):
        with js.variable_scope(name):
            x = jnp.tanh(x @ js.get_variable("w", [D, D]) + js.get_variable("b", [D]))
    return x


def rematted(x):
    return js.remat(mlp_body)(x)


def test_remat_creates_the_same_params_as_without():
    assert_bit_identical(run_both(rematted, X).params, js.transform(mlp_body).init(0, X))


def test_remat_gives_the_same_values_and_gradients_as_without():
    params = js.transform(mlp_body).init(0, X)

    def grads(model):
        def loss(params, x):
            return jnp.sum(js.transform(model).apply(params, x) ** 2)

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, X)

    (value, (dparams, dx)), (ref_value, (ref_dparams, ref_dx)) = grads(rematted), grads(mlp_body)
    np.testing.assert_allclose(value, ref_value, **TOL)
    assert_close(dparams, ref_dparams, **TOL)
    np.testing.assert_allclose(dx, ref_dx, **TOL)


def test_remat_passes_checkpoint_options_through():
    def model(x):
        policy = jax.checkpoint_policies.nothing_saveable
        return js.remat(mlp_body, policy=policy)(x)

    np.testing.assert_allclose(run_both(model, X).out_jit, run_both(mlp_body, X).out_jit, **TOL)
