"""``js.layer_stack`` (DESIGN §6) against the unrolled ``layer_<i>`` model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import assert_bit_identical, assert_close, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
N = 4  # layers in a layer stack
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance
X = jax.random.normal(jax.random.key(7), (B, D))


def key_data(key):
    return jax.random.key_data(key)


# --- layer_stack against the unrolled layer_<i> model -------------------------


def block(x, shift):
    with js.variable_scope("dense"):
        w = js.get_variable("w", [x.shape[-1], x.shape[-1]])
        b = js.get_variable("b", [x.shape[-1]], initializer=js.initializers.random_normal(0.0, 0.5))
    return jnp.tanh(x @ w + b) + shift


def stacked_mlp(x, shift):
    with js.variable_scope("mlp"):
        return js.layer_stack(N)(block)(x, shift)


def unrolled_mlp(x, shift):
    with js.variable_scope("mlp"):
        for i in range(N):
            with js.variable_scope(f"layer_{i}"):
                x = block(x, shift)
    return x


SHIFT = jnp.float32(0.25)


def test_layer_stack_stacks_variables_on_a_leading_axis_under_the_scope():
    params = js.transform(stacked_mlp).init(0, X, SHIFT)
    assert jax.tree.map(jnp.shape, params) == {"mlp": {"dense": {"b": (N, D), "w": (N, D, D)}}}


def test_unstack_layers_gives_the_unrolled_initial_values_bit_for_bit():
    stacked = js.transform(stacked_mlp).init(0, X, SHIFT)
    unrolled = js.transform(unrolled_mlp).init(0, X, SHIFT)
    assert_bit_identical({"mlp": js.unstack_layers(stacked["mlp"])}, unrolled)


def test_stack_layers_gives_the_stacked_initial_values_bit_for_bit():
    stacked = js.transform(stacked_mlp).init(0, X, SHIFT)
    unrolled = js.transform(unrolled_mlp).init(0, X, SHIFT)
    assert_bit_identical({"mlp": js.stack_layers(unrolled["mlp"])}, stacked)


def test_stack_layers_inverts_unstack_layers():
    stacked = js.transform(stacked_mlp).init(0, X, SHIFT)["mlp"]
    assert_bit_identical(js.stack_layers(js.unstack_layers(stacked)), stacked)


def test_layer_stack_conversion_helpers_take_a_custom_layer_name():
    tree = {"block_0": {"w": jnp.zeros(2)}, "block_1": {"w": jnp.ones(2)}}
    stacked = js.stack_layers(tree, layer_name="block")
    np.testing.assert_array_equal(stacked["w"], [[0.0, 0.0], [1.0, 1.0]])
    assert_bit_identical(js.unstack_layers(stacked, layer_name="block"), tree)


def test_stack_layers_rejects_keys_that_are_not_layers():
    with pytest.raises(errors.ArgumentError, match="layer_0"):
        js.stack_layers({"layer_0": {"w": jnp.zeros(2)}, "other": {"w": jnp.zeros(2)}})


def test_stack_layers_with_a_missing_layer_names_it():
    tree = {"layer_0": {"w": jnp.zeros(2)}, "layer_2": {"w": jnp.zeros(2)}}
    with pytest.raises(errors.ArgumentError, match="missing layer_1") as info:
        js.stack_layers(tree)
    assert isinstance(info.value, ValueError) and "Fix" in str(info.value)


def test_stack_layers_with_layers_of_different_variables_names_the_variable():
    tree = {"layer_0": {"w": jnp.zeros(2)}, "layer_1": {"b": jnp.zeros(2)}}
    with pytest.raises(errors.ArgumentError, match="layer_1 and layer_0") as info:
        js.stack_layers(tree)
    assert "b" in str(info.value) and "Fix" in str(info.value)


def test_unstack_layers_on_a_scalar_leaf_is_a_clear_error():
    with pytest.raises(errors.ArgumentError, match="enc/count is a scalar") as info:
        js.unstack_layers({"enc": {"w": jnp.zeros((2, 3)), "count": jnp.zeros(())}})
    assert isinstance(info.value, ValueError) and "Fix" in str(info.value)


def test_unstack_layers_with_leaves_of_different_layer_counts_is_a_clear_error():
    with pytest.raises(errors.ArgumentError, match=r"\[2, 3\]"):
        js.unstack_layers({"w": jnp.zeros((2, 3)), "b": jnp.zeros((3,))})


def test_each_layer_of_a_layer_stack_gets_its_own_initial_values():
    params = js.transform(stacked_mlp).init(0, X, SHIFT)
    for leaf in jax.tree.leaves(params):
        for i in range(N):
            for j in range(i):
                assert not np.array_equal(leaf[i], leaf[j])


def test_layer_stack_named_layers_initialize_as_the_unrolled_model_with_that_name():
    def stacked(x):
        return js.layer_stack(2, layer_name="block")(lambda x: x @ js.get_variable("w", [D, D]))(x)

    def unrolled(x):
        for i in range(2):
            with js.variable_scope(f"block_{i}"):
                x = x @ js.get_variable("w", [D, D])
        return x

    params = js.transform(stacked).init(0, X)
    assert_bit_identical(
        js.unstack_layers(params, layer_name="block"), js.transform(unrolled).init(0, X)
    )


def test_layer_stack_outputs_equal_unrolled_given_stacked_params():
    stacked = run_both(stacked_mlp, X, SHIFT)
    unrolled_params = {"mlp": js.unstack_layers(stacked.params["mlp"])}
    unrolled = jax.jit(js.transform(unrolled_mlp).apply)(unrolled_params, X, SHIFT)
    np.testing.assert_allclose(stacked.out_init, unrolled, **TOL)
    np.testing.assert_allclose(stacked.out_jit, unrolled, **TOL)


def test_layer_stack_outputs_equal_unrolled_given_unrolled_params():
    unrolled = run_both(unrolled_mlp, X, SHIFT)
    stacked_params = {"mlp": js.stack_layers(unrolled.params["mlp"])}
    stacked = jax.jit(js.transform(stacked_mlp).apply)(stacked_params, X, SHIFT)
    np.testing.assert_allclose(stacked, unrolled.out_jit, **TOL)


def test_layer_stack_gradients_equal_unrolled_for_params_and_inputs():
    stacked_params = js.transform(stacked_mlp).init(0, X, SHIFT)
    unrolled_params = {"mlp": js.unstack_layers(stacked_params["mlp"])}

    def grads(model, params):
        def loss(params, x):
            return jnp.sum(js.transform(model).apply(params, x, SHIFT) ** 2)

        return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, X)

    stacked_dparams, stacked_dx = grads(stacked_mlp, stacked_params)
    unrolled_dparams, unrolled_dx = grads(unrolled_mlp, unrolled_params)
    assert_close({"mlp": js.unstack_layers(stacked_dparams["mlp"])}, unrolled_dparams, **TOL)
    np.testing.assert_allclose(stacked_dx, unrolled_dx, **TOL)


def test_layer_stack_passes_extra_args_and_kwargs_to_every_layer():
    def model(x, step, scale):
        def layer(x, step, *, scale):
            w = js.get_variable("w", [D], initializer=js.initializers.ones)
            return x * w * scale + step

        return js.layer_stack(3)(layer)(x, step, scale=scale)

    runs = run_both(model, jnp.zeros(D), jnp.float32(1.0), jnp.float32(2.0))
    np.testing.assert_allclose(runs.out_jit, jnp.full(D, 7.0))  # ((0*2+1)*2+1)*2+1


def layers_keys(x):
    """Each layer writes the key it draws into row i of the carry."""

    def layer(carry):
        i, keys = carry
        return i + 1, keys.at[i].set(key_data(js.next_rng_key()))

    with js.variable_scope("stack"):
        return js.layer_stack(N)(layer)((0, jnp.zeros((N, 2), jnp.uint32)))[1]


def test_next_rng_key_differs_per_layer_of_a_layer_stack():
    keys = run_both(layers_keys, X, rng=1, apply_rng=1).out_jit
    assert len({tuple(np.asarray(k)) for k in keys}) == N


def test_next_rng_key_in_a_layer_stack_is_deterministic():
    apply = jax.jit(js.transform(layers_keys).apply)
    np.testing.assert_array_equal(apply({}, X, rng=1), apply({}, X, rng=1))
    assert not np.array_equal(apply({}, X, rng=1), apply({}, X, rng=2))


@pytest.mark.parametrize("leading", [N + 1, 1], ids=["too_many_layers", "one_layer"])
def test_layer_stack_param_with_the_wrong_leading_axis_names_the_variable(leading):
    params = js.transform(stacked_mlp).init(0, X, SHIFT)
    params["mlp"]["dense"]["w"] = jnp.zeros((leading, D, D))
    with pytest.raises(errors.ShapeMismatchError) as info:
        jax.jit(js.transform(stacked_mlp).apply)(params, X, SHIFT)
    message = str(info.value)
    assert "mlp/dense/w" in message
    assert f"leading axis of size {N}" in message
    assert "js.stack_layers" in message


def test_layer_stack_given_unrolled_params_in_apply_is_a_clear_error():
    unrolled = js.transform(unrolled_mlp).init(0, X, SHIFT)
    with pytest.raises(errors.VariableMissingError, match="mlp/dense/w"):
        js.transform(stacked_mlp).apply(unrolled, X, SHIFT)


def test_layer_stack_needs_a_positive_number_of_layers():
    with pytest.raises(errors.ArgumentError, match="positive int") as info:
        js.layer_stack(0)
    assert isinstance(info.value, ValueError) and "Fix" in str(info.value)


def test_scan_without_xs_or_length_is_a_clear_error():
    def model():
        return js.scan(lambda c, x: (c, None), 0.0, None)

    with pytest.raises(errors.ArgumentError, match="length=") as info:
        js.transform(model).init(0)
    assert isinstance(info.value, ValueError) and "Fix" in str(info.value)
