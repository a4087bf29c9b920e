"""Lifted transforms (DESIGN §6): JAX control flow whose bodies use variables.

The reference for every lifted transform is the program without it: an RNN
built with ``js.scan`` against the same cell unrolled in a Python loop, a
``js.layer_stack`` against the unrolled ``layer_<i>`` model, ``js.remat``
against the plain function. Programs run through ``init``, eager ``apply``
and jitted ``apply``. The error paths check the error's type and the words
that matter in its message: the variable's path and the fix.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
N = 4  # layers in a layer stack
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 tolerance

XS = jax.random.normal(jax.random.key(42), (T, B, D))
X = jax.random.normal(jax.random.key(7), (B, D))


def paths(tree):
    return sorted(js.flatten(tree))


def assert_trees_equal(a, b):
    """Same structure and bit-identical leaves."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **TOL)


def key_data(key):
    return jax.random.key_data(key)


# --- 1. An LSTM over time: js.scan against the unrolled loop ---------------------


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
    assert_trees_equal(scanned, js.transform(unrolled).init(0, XS))


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_outputs_equal_unrolled_in_init_and_jitted_apply(unrolled):
    scanned, reference = run_both(scanned_lstm, XS), run_both(unrolled, XS)
    assert_trees_close(scanned.out_init, reference.out_init)
    assert_trees_close(scanned.out_jit, reference.out_jit)
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
    assert_trees_close(scan_dparams, ref_dparams)
    np.testing.assert_allclose(scan_dxs, ref_dxs, **TOL)
    assert float(jnp.abs(scan_dxs).sum()) > 0  # the inputs do reach the loss


@pytest.mark.parametrize("unrolled", UNROLLED_LSTMS)
def test_scan_lstm_jitted_init_gives_the_unrolled_jitted_init_params(unrolled):
    scanned = jax.jit(js.transform(scanned_lstm).init)(0, XS)
    assert_trees_equal(scanned, jax.jit(js.transform(unrolled).init)(0, XS))


# --- 2. layer_stack against the unrolled layer_<i> model -------------------------


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
    assert_trees_equal({"mlp": js.unstack_layers(stacked["mlp"])}, unrolled)


def test_stack_layers_gives_the_stacked_initial_values_bit_for_bit():
    stacked = js.transform(stacked_mlp).init(0, X, SHIFT)
    unrolled = js.transform(unrolled_mlp).init(0, X, SHIFT)
    assert_trees_equal({"mlp": js.stack_layers(unrolled["mlp"])}, stacked)


def test_stack_layers_inverts_unstack_layers():
    stacked = js.transform(stacked_mlp).init(0, X, SHIFT)["mlp"]
    assert_trees_equal(js.stack_layers(js.unstack_layers(stacked)), stacked)


def test_layer_stack_conversion_helpers_take_a_custom_layer_name():
    tree = {"block_0": {"w": jnp.zeros(2)}, "block_1": {"w": jnp.ones(2)}}
    stacked = js.stack_layers(tree, layer_name="block")
    np.testing.assert_array_equal(stacked["w"], [[0.0, 0.0], [1.0, 1.0]])
    assert_trees_equal(js.unstack_layers(stacked, layer_name="block"), tree)


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
    assert_trees_equal(
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
    assert_trees_close({"mlp": js.unstack_layers(stacked_dparams["mlp"])}, unrolled_dparams)
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


# --- 3. Scopes, reuse, initializers, regularizers, getters inside lifted bodies ---


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
    assert_trees_equal(scanned, reference)


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
    assert_trees_equal(runs.params, js.transform(unrolled).init(0, XS))
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


def per_example(x):
    with js.variable_scope("embed"):
        w = js.get_variable("w", [D, HIDDEN])
    return jnp.tanh(x @ w)


def test_vmap_shares_variables_across_the_batch():
    def model(xs):
        return js.vmap(per_example)(xs)

    runs = run_both(model, X)
    assert jax.tree.map(jnp.shape, runs.params) == {"embed": {"w": (D, HIDDEN)}}
    assert_trees_equal(runs.params, js.transform(per_example).init(0, X[0]))
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
    assert_trees_equal(run_both(rematted, X).params, js.transform(mlp_body).init(0, X))


def test_remat_gives_the_same_values_and_gradients_as_without():
    params = js.transform(mlp_body).init(0, X)

    def grads(model):
        def loss(params, x):
            return jnp.sum(js.transform(model).apply(params, x) ** 2)

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, X)

    (value, (dparams, dx)), (ref_value, (ref_dparams, ref_dx)) = grads(rematted), grads(mlp_body)
    np.testing.assert_allclose(value, ref_value, **TOL)
    assert_trees_close(dparams, ref_dparams)
    np.testing.assert_allclose(dx, ref_dx, **TOL)


def test_remat_passes_checkpoint_options_through():
    def model(x):
        policy = jax.checkpoint_policies.nothing_saveable
        return js.remat(mlp_body, policy=policy)(x)

    np.testing.assert_allclose(run_both(model, X).out_jit, run_both(mlp_body, X).out_jit, **TOL)


def branches(pred, x):
    def true_fn(x):
        with js.variable_scope("yes"):
            return x @ js.get_variable("w", [D, D])

    def false_fn(x):
        with js.variable_scope("no"):
            return x + js.get_variable("b", [D])

    return js.cond(pred, true_fn, false_fn, x)


@pytest.mark.parametrize("pred", [True, False])
def test_cond_creates_both_branches_variables_in_init(pred):
    params = js.transform(branches).init(0, pred, X)
    assert paths(params) == ["no/b", "yes/w"]


@pytest.mark.parametrize("pred", [True, False])
def test_cond_runs_the_chosen_branch_in_init_and_jitted_apply(pred):
    runs = run_both(branches, jnp.bool_(pred), X)
    params = runs.params
    expected = X @ params["yes"]["w"] if pred else X + params["no"]["b"]
    np.testing.assert_allclose(runs.out_init, expected, **TOL)
    np.testing.assert_allclose(runs.out_jit, expected, **TOL)


def test_cond_branches_creating_the_same_name_raise_as_tf1():
    def model(x):
        return js.cond(True, true_fn, false_fn, x)

    def true_fn(x):
        return x * js.get_variable("w", [D])

    def false_fn(x):
        return x + js.get_variable("w", [D])  # tf.cond builds both branches

    f = js.transform(model)
    with pytest.raises(errors.VariableExistsError, match="w already exists"):
        f.init(0, X)
    with pytest.raises(errors.VariableExistsError, match="w already exists"):
        jax.jit(f.apply)({"w": jnp.ones(D)}, X)


VOCAB, EOS, MAX_LEN = 6, 0, 8


def decoder_step(i, token, h):
    """One greedy step of an RNN decoder; the end-of-sequence logit grows with
    the step index (a length penalty), so every sequence ends."""
    with js.variable_scope("decoder"):
        embedding = js.get_variable("embedding", [VOCAB, HIDDEN])
        u = js.get_variable("u", [HIDDEN, HIDDEN])
        with js.variable_scope("proj"):
            w = js.get_variable("w", [HIDDEN, VOCAB])
            b = js.get_variable("b", [VOCAB], initializer=js.initializers.zeros)
    h = jnp.tanh(embedding[token] + h @ u)
    logits = (h @ w + b).at[EOS].add(0.3 * i)
    return jnp.argmax(logits).astype(jnp.int32), h


def greedy_decode(start):
    def keep_going(carry):
        i, token, _, _ = carry
        return (i < MAX_LEN) & (token != EOS)

    def step(carry):
        i, token, h, out = carry
        token, h = decoder_step(i, token, h)
        return i + 1, token, h, out.at[i].set(token)

    init = (jnp.int32(0), start, jnp.zeros(HIDDEN), jnp.full(MAX_LEN, -1, jnp.int32))
    length, _, _, tokens = js.while_loop(keep_going, step, init)
    return length, tokens


def python_decode(params, start):
    """The reference: the same greedy decoder as a Python loop."""
    step = jax.jit(js.transform(decoder_step).apply)
    tokens, token, h = [], start, jnp.zeros(HIDDEN)
    while len(tokens) < MAX_LEN and (not tokens or tokens[-1] != EOS):
        token, h = step(params, jnp.int32(len(tokens)), jnp.int32(token), h)
        tokens.append(int(token))
    return tokens


@pytest.mark.parametrize("seed", [0, 1])
def test_while_loop_greedy_decoder_in_init_and_jitted_apply(seed):
    runs = run_both(greedy_decode, jnp.int32(3), rng=seed)
    assert paths(runs.params) == [
        "decoder/embedding",
        "decoder/proj/b",
        "decoder/proj/w",
        "decoder/u",
    ]
    expected = python_decode(runs.params, 3)
    assert 1 < len(expected) < MAX_LEN  # stopped by the condition, not the bound
    for length, tokens in (runs.out_init, runs.out_jit):
        assert int(length) == len(expected)
        assert tokens.tolist() == expected + [-1] * (MAX_LEN - len(expected))


def test_while_loop_decoder_stops_at_end_of_sequence():
    # Biasing the projection toward EOS makes the first step emit it.
    params = js.transform(greedy_decode).init(0, jnp.int32(3))
    params["decoder"]["proj"]["b"] = jnp.zeros(VOCAB).at[EOS].set(100.0)
    length, tokens = jax.jit(js.transform(greedy_decode).apply)(params, jnp.int32(3))
    assert int(length) == 1
    assert tokens.tolist() == [EOS] + [-1] * (MAX_LEN - 1)


def test_next_rng_key_inside_while_loop_differs_per_iteration():
    def model():
        def body(carry):
            i, keys = carry
            return i + 1, keys.at[i].set(key_data(js.next_rng_key()))

        return js.while_loop(lambda c: c[0] < 3, body, (0, jnp.zeros((3, 2), jnp.uint32)))[1]

    keys = run_both(model, apply_rng=0).out_jit
    assert len({tuple(np.asarray(k)) for k in keys}) == 3


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
    assert_trees_equal(unrolled_params, js.transform(unrolled).init(0, XS))
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
    assert_trees_equal(runs.params, js.transform(unrolled).init(0, xss))
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


# --- 4. Error paths ------------------------------------------------------------


def raw_scan(x):
    return jax.lax.scan(lambda c, xi: (c + xi @ js.get_variable("enc/w", [D]), None), 0.0, x)[0]


def raw_vmap(x):
    return jax.vmap(lambda xi: xi @ js.get_variable("enc/w", [D]))(x)


def raw_jit(x):
    return jax.jit(lambda x: x @ js.get_variable("enc/w", [D]))(x)


def raw_checkpoint(x):
    return jax.checkpoint(lambda x: x @ js.get_variable("enc/w", [D]))(x)


def raw_while_loop(x):
    def body(c):
        return c + jnp.sum(js.get_variable("enc/w", [D])) ** 2 + 1.0

    return jax.lax.while_loop(lambda c: c < 10.0, body, 0.0)


def raw_cond(x):
    return jax.lax.cond(True, lambda x: x @ js.get_variable("enc/w", [D]), lambda x: x[:, 0], x)


RAW = [
    pytest.param(raw_scan, "js.scan", id="scan"),
    pytest.param(raw_vmap, "js.vmap", id="vmap"),
    pytest.param(raw_jit, "create the variable before entering", id="jit"),
    pytest.param(raw_checkpoint, "js.remat", id="checkpoint"),
    pytest.param(raw_while_loop, "js.while_loop", id="while_loop"),
    pytest.param(raw_cond, "js.cond", id="cond"),
]


@pytest.mark.parametrize(("model", "lifted"), RAW)
def test_creating_a_variable_inside_a_raw_transform_in_init_names_it_and_the_fix(model, lifted):
    with pytest.raises(errors.RawTransformError) as info:
        js.transform(model).init(0, X)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "enc/w" in message
    assert lifted in message  # the fix: the lifted function to use


@pytest.mark.parametrize(("model", "lifted"), RAW)
def test_creating_a_variable_inside_a_raw_transform_under_jitted_init_raises_the_same(
    model, lifted
):
    with pytest.raises(errors.RawTransformError, match="enc/w"):
        jax.jit(js.transform(model).init)(0, X)


@pytest.mark.parametrize(("model", "lifted"), RAW)
def test_creating_a_variable_inside_a_raw_transform_in_apply_raises_the_same(model, lifted):
    params = {"enc": {"w": jnp.ones(D)}}  # even with the variable present
    apply = js.transform(model).apply
    for run in (apply, jax.jit(apply)):
        with pytest.raises(errors.RawTransformError, match="enc/w"):
            run(params, X)


def test_creating_a_variable_inside_a_raw_transform_inside_a_lifted_body_raises():
    def model(xs):
        def step(h, x):
            return h + jax.vmap(lambda xi: xi @ js.get_variable("w", [D]))(x), None

        return js.scan(step, jnp.zeros(B), xs)[0]

    with pytest.raises(errors.RawTransformError, match="w"):
        js.transform(model).init(0, XS)
    with pytest.raises(errors.RawTransformError, match="w"):
        js.transform(model).apply({"w": jnp.ones(D)}, XS)


def lookup_in(raw):
    """A model that creates enc/w, then reads it inside a raw transform."""

    def model(x):
        with js.variable_scope("enc") as enc:
            w = js.get_variable("w", [D])

        def read(_):
            with js.variable_scope(enc, reuse=True):
                return js.get_variable("w", [D])

        return w, raw(read, x)

    return model


RAW_LOOKUPS = [
    pytest.param(
        lambda read, x: jax.lax.scan(lambda c, xi: (c, read(xi)), 0.0, x)[1][0], id="scan"
    ),
    pytest.param(lambda read, x: jax.vmap(read)(x)[0], id="vmap"),
    pytest.param(lambda read, x: jax.jit(read)(x), id="jit"),
    pytest.param(lambda read, x: jax.checkpoint(read)(x), id="checkpoint"),
    pytest.param(
        lambda read, x: jax.lax.while_loop(
            lambda c: c[0] < 2, lambda c: (c[0] + 1, read(x)), (0, jnp.zeros(D))
        )[1],
        id="while_loop",
    ),
    pytest.param(lambda read, x: jax.lax.cond(True, read, lambda _: jnp.zeros(D), x), id="cond"),
]


@pytest.mark.parametrize("raw", RAW_LOOKUPS)
def test_lookups_of_created_variables_inside_raw_transforms_keep_working(raw):
    runs = run_both(lookup_in(raw), X)
    assert paths(runs.params) == ["enc/w"]
    w, read = runs.out_jit
    np.testing.assert_array_equal(read, w)
    np.testing.assert_array_equal(w, runs.params["enc"]["w"])


def stack_inside_stack(x):
    def outer(x):
        return js.layer_stack(2)(lambda x: x @ js.get_variable("w", [D, D]))(x)

    return js.layer_stack(2)(outer)(x)


def test_layer_stack_nested_inside_another_layer_stack_is_a_clear_error():
    f = js.transform(stack_inside_stack)
    with pytest.raises(errors.LiftError) as info:
        f.init(0, XS)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "js.layer_stack cannot be nested inside another js.layer_stack" in message
    assert "Fix: stack the inner layers outside" in message
    with pytest.raises(errors.LiftError, match="js.layer_stack cannot be nested"):
        jax.jit(f.apply)({"w": jnp.ones((2, D, D))}, XS)


def stack_reentering_outside_scope(initializer):
    def model(x):
        with js.variable_scope("other") as other:
            pass

        def layer(x):
            with js.variable_scope(other):
                return x + js.get_variable("b", [D], initializer=initializer)

        with js.variable_scope("stack"):
            return js.layer_stack(N)(layer)(x)

    return model


def test_layer_stack_variable_created_outside_its_scope_errors_in_init():
    with pytest.raises(errors.LiftError) as info:
        js.transform(stack_reentering_outside_scope(None)).init(0, X)
    message = str(info.value)
    assert "other/b" in message
    assert "'stack'" in message


def test_layer_stack_variable_with_a_concrete_initializer_outside_its_scope_errors():
    model = stack_reentering_outside_scope(np.zeros(D, np.float32))
    with pytest.raises(errors.LiftError, match="other/b"):
        js.transform(model).init(0, X)


def test_layer_stack_variable_created_outside_its_scope_errors_in_apply():
    model = stack_reentering_outside_scope(None)
    with pytest.raises(errors.LiftError, match="other/b"):
        js.transform(model).apply({"other": {"b": jnp.zeros((N, D))}}, X)


def created_before_and_inside_scan(xs):
    with js.variable_scope("cell"):
        js.get_variable("w", [D])

    def step(h, x):
        with js.variable_scope("cell"):
            return h + js.get_variable("w", [D]), None

    return js.scan(step, jnp.zeros(D), xs)[0]


def created_before_and_inside_unrolled_loop(xs):
    with js.variable_scope("cell"):
        js.get_variable("w", [D])
    h = jnp.zeros(D)
    for t in range(xs.shape[0]):
        with js.variable_scope("cell", reuse=True if t > 0 else None):
            h = h + js.get_variable("w", [D])
    return h


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(created_before_and_inside_scan, id="scan"),
        pytest.param(created_before_and_inside_unrolled_loop, id="unrolled"),
    ],
)
def test_second_creation_inside_a_scan_body_of_a_name_created_before_errors(model):
    f = js.transform(model)
    with pytest.raises(errors.VariableExistsError) as info:
        f.init(0, XS)
    message = str(info.value)
    assert "cell/w already exists" in message and "reuse=True" in message
    with pytest.raises(errors.VariableExistsError, match="cell/w"):
        jax.jit(f.apply)({"cell": {"w": jnp.ones(D)}}, XS)


def test_body_obtaining_variables_that_depend_on_the_trace_is_a_clear_error():
    calls = []

    def model(xs):
        def step(h, x):
            calls.append(None)
            name = "first" if len(calls) == 1 else "second"  # differs per trace
            return h + js.get_variable(name, [D]), None

        return js.scan(step, jnp.zeros(D), xs)[0]

    with pytest.raises(errors.LiftError, match="second"):
        js.transform(model).init(0, XS)


def weakly_typed_scan_carry(xs):
    def step(total, x):
        return total + jnp.sum(x * js.get_variable("w", [D])), None

    return js.scan(step, 0, xs[:, 0])[0]  # an int carry that becomes float32


def weakly_typed_while_carry(xs):
    def body(carry):
        i, total = carry
        return i + 1, total + jnp.sum(js.get_variable("w", [D]))

    return js.while_loop(lambda c: c[0] < 3, body, (0, 0))[1]


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(weakly_typed_scan_carry, id="scan"),
        pytest.param(weakly_typed_while_carry, id="while_loop"),
    ],
)
def test_body_retraced_for_a_weakly_typed_carry_works_in_apply(model):
    params = js.transform(model).init(0, XS)
    js.transform(model).apply(params, XS)


# --- 5. Outside any transform the lifted functions are the raw JAX ones ----------


def test_scan_outside_a_transform_is_lax_scan():
    def step(c, x):
        return c * 0.5 + x, jnp.sin(c)

    for kwargs in (dict(), dict(reverse=True), dict(unroll=2)):
        assert_trees_equal(
            js.scan(step, jnp.zeros((B, D)), XS, **kwargs),
            jax.lax.scan(step, jnp.zeros((B, D)), XS, **kwargs),
        )
    assert_trees_equal(
        js.scan(lambda c, _: (c + 1, c), 0, None, length=3),
        jax.lax.scan(lambda c, _: (c + 1, c), 0, None, length=3),
    )


def test_vmap_outside_a_transform_is_jax_vmap():
    def f(x, y):
        return x * y, jnp.sum(x)

    assert_trees_equal(
        js.vmap(f, in_axes=(1, None), out_axes=(0, 0))(XS, 2.0),
        jax.vmap(f, in_axes=(1, None), out_axes=(0, 0))(XS, 2.0),
    )


def test_remat_outside_a_transform_is_jax_checkpoint():
    def f(x):
        return jnp.sum(jnp.sin(x) ** 2)

    assert_trees_equal(jax.grad(js.remat(f))(X), jax.grad(jax.checkpoint(f))(X))
    assert_trees_equal(js.remat(f)(X), f(X))


def test_cond_outside_a_transform_is_lax_cond():
    for pred in (True, False):
        assert_trees_equal(
            js.cond(pred, jnp.sin, jnp.cos, X), jax.lax.cond(pred, jnp.sin, jnp.cos, X)
        )


def test_while_loop_outside_a_transform_is_lax_while_loop():
    def body(c):
        return c[0] + 1, c[1] * 2.0

    assert_trees_equal(
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
