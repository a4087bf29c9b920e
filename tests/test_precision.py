"""js.precision: float32 storage with bfloat16/float16 compute, and loss scaling.

Each program runs through init and jitted apply; the compute dtype is read
off the jaxpr, not assumed; the references are the float32 model, jmp and
Haiku's mixed precision, and TF1 itself for NVIDIA's getter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js

from .conftest import run_both
from .test_nn_precision import dot_operand_dtypes
from .tf1_graph import legacy_tf, randn, run_graph

BF16 = js.precision.Policy(compute_dtype=jnp.bfloat16, output_dtype=jnp.float32)
F16 = js.precision.Policy(compute_dtype=jnp.float16, output_dtype=jnp.float32)
FULL = js.precision.Policy()
VOCAB, WIDTH = 16, 8


def block(ids, policy):
    """A small Transformer block: every js.nn layer a port calls for it."""
    with js.variable_scope("model", custom_getter=policy.getter):
        x = js.nn.embedding(ids, VOCAB, WIDTH, name="embedding")
        causal = js.nn.causal_mask(ids.shape[-1])
        x = x + js.nn.multi_head_attention(js.nn.layer_norm(x), x, causal, num_heads=2)
        h = js.nn.dense(js.nn.layer_norm(x), 2 * WIDTH, jax.nn.relu)
        x = x + js.nn.dense(h, WIDTH)
        logits = js.nn.embedding.attend(x, name="embedding")
    return policy.cast_to_output(logits)


IDS = jnp.asarray(np.random.default_rng(0).integers(0, VOCAB, (3, 5)), jnp.int32)


def model(policy):
    return js.transform(lambda ids: block(ids, policy))


def dtypes(tree) -> set[str]:
    return {str(leaf.dtype) for leaf in jax.tree.leaves(tree)}


def assert_close_in_bfloat16(a, b):
    # bfloat16 keeps 8 bits of mantissa: a relative step of 2**-8 per rounding.
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=5e-2, atol=5e-2)


# --- the policy ---------------------------------------------------------------


def test_params_are_float32_after_init_and_after_an_optax_step():
    f = model(BF16)
    params = f.init(0, IDS)
    assert dtypes(params) == {"float32"}
    tx = optax.adam(1e-2)

    @jax.jit
    def step(params, opt_state):
        grads = jax.grad(lambda p: jnp.mean(f.apply(p, IDS) ** 2))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    stepped, opt_state = step(params, tx.init(params))
    assert dtypes(stepped) == dtypes(opt_state[0].mu) == {"float32"}
    before, after = jax.tree.leaves(params), jax.tree.leaves(stepped)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_every_matrix_product_runs_in_bfloat16():
    f = model(BF16)
    params = f.init(0, IDS)
    operands = dot_operand_dtypes(f.apply, params, IDS)
    # embedding.attend, two dense layers, four attention projections and
    # the attention's two products.
    assert len(operands) >= 9
    assert set(operands) == {("bfloat16", "bfloat16")}
    # The same model without the getter computes in float32.
    assert set(dot_operand_dtypes(model(FULL).apply, params, IDS)) == {("float32", "float32")}


def test_outputs_are_close_to_the_float32_model_and_not_equal():
    params = model(FULL).init(0, IDS)
    full = jax.jit(model(FULL).apply)(params, IDS)
    half = jax.jit(model(BF16).apply)(params, IDS)
    assert half.dtype == jnp.float32  # the policy's output dtype
    assert not np.array_equal(half, full)
    assert_close_in_bfloat16(half, full)


def test_gradients_reach_the_float32_params_close_to_the_float32_model():
    params = model(FULL).init(0, IDS)

    def grads(policy):
        return jax.jit(jax.grad(lambda p: jnp.mean(model(policy).apply(p, IDS) ** 2)))(params)

    full, half = grads(FULL), grads(BF16)
    assert dtypes(half) == {"float32"}
    full, half = (jnp.concatenate([g.ravel() for g in jax.tree.leaves(t)]) for t in (full, half))
    assert float(jnp.linalg.norm(half - full) / jnp.linalg.norm(full)) < 2e-2


def test_policy_applies_inside_js_scan():
    def rnn(xs, policy):
        def step(state, x):
            h, state = js.nn.lstm_cell(x, state, name="lstm_cell")
            return state, h

        with js.variable_scope("rnn", custom_getter=policy.getter):
            xs = policy.cast_to_compute(xs)
            initial = js.nn.LSTMState.zeros(xs.shape[1], 6, xs.dtype)
            return policy.cast_to_output(js.scan(step, initial, xs)[1])

    xs = jnp.asarray(randn(4, 2, 3))
    full, half = (js.transform(lambda xs, p=p: rnn(xs, p)) for p in (FULL, BF16))
    params = half.init(0, xs)
    assert dtypes(params) == {"float32"}
    assert set(dot_operand_dtypes(half.apply, params, xs)) == {("bfloat16", "bfloat16")}
    assert_close_in_bfloat16(jax.jit(half.apply)(params, xs), full.apply(params, xs))
    grads = jax.grad(lambda p: jnp.sum(half.apply(p, xs)))(params)
    assert dtypes(grads) == {"float32"}


def test_policy_applies_inside_layer_stack_and_stacked_params_stay_float32():
    def stack(x, policy):
        @js.layer_stack(3)
        def layer(x):
            return x + js.nn.dense(js.nn.layer_norm(x), x.shape[-1], jnp.tanh)

        with js.variable_scope("stack", custom_getter=policy.getter):
            return policy.cast_to_output(layer(policy.cast_to_compute(x)))

    x = jnp.asarray(randn(2, 4))
    full, half = (js.transform(lambda x, p=p: stack(x, p)) for p in (FULL, BF16))
    params = half.init(0, x)
    assert jax.tree.map(lambda v: (v.shape, str(v.dtype)), params) == {
        "stack": {
            "LayerNorm": {"beta": ((3, 4), "float32"), "gamma": ((3, 4), "float32")},
            "dense": {"bias": ((3, 4), "float32"), "kernel": ((3, 4, 4), "float32")},
        }
    }
    assert set(dot_operand_dtypes(half.apply, params, x)) == {("bfloat16", "bfloat16")}
    assert_close_in_bfloat16(jax.jit(half.apply)(params, x), full.apply(params, x))
    tx = optax.sgd(0.1)
    grads = jax.grad(lambda p: jnp.sum(half.apply(p, x) ** 2))(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert dtypes(optax.apply_updates(params, updates)) == {"float32"}


def test_policy_leaves_state_and_integer_variables_as_asked():
    def fn(x):
        with js.variable_scope("m", custom_getter=BF16.getter):
            y = js.nn.batch_norm(BF16.cast_to_compute(x), is_training=True)
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)
            step = js.get_variable("step", initializer=np.int32(7))
        return y, step

    f = js.transform_with_state(fn)
    x = jnp.asarray(randn(4, 3))
    params, state = f.init(0, x)
    (y, step), state = jax.jit(f.apply)(params, state, x)
    assert dtypes(params) == {"float32", "int32"}  # gamma, beta; step
    assert step.dtype == jnp.int32 and int(step) == 7
    assert dtypes(state) == {"float32", "int32"}  # moving statistics updated as stored
    assert int(state["m"]["count"]) == 1
    assert y.dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("getter", "dtype"),
    [(BF16.getter, None), (js.precision.float32_variable_storage_getter, jnp.bfloat16)],
    ids=["policy", "float32_storage"],
)
def test_getters_compose_with_an_inner_getter_calling_them_positionally(getter, dtype):
    def doubling(getter, name, shape=None, dtype=None, initializer=None, regularizer=None,
                 reuse=None, trainable=True, **kwargs):  # fmt: skip
        # TF1's positional order, as a TF1 getter may call the next one.
        return 2 * getter(name, shape, dtype, initializer, regularizer, reuse, trainable, **kwargs)

    def fn():
        with js.variable_scope("outer", custom_getter=getter, dtype=dtype):
            with js.variable_scope("inner", custom_getter=doubling):
                return js.get_variable("w", [2], initializer=js.initializers.ones)

    runs = run_both(fn)
    assert runs.params["outer"]["inner"]["w"].dtype == jnp.float32
    assert runs.out_jit.dtype == jnp.bfloat16
    np.testing.assert_array_equal(runs.out_jit, [2, 2])


def test_params_cast_to_bfloat16_by_hand_are_a_dtype_error_naming_the_variable():
    f = model(BF16)
    params = jax.tree.map(lambda v: v.astype(jnp.bfloat16), f.init(0, IDS))
    with pytest.raises(js.errors.DtypeMismatchError, match=r"model/embedding/embeddings.*float32"):
        f.apply(params, IDS)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"compute_dtype": "int8"}, js.errors.ArgumentError, "not a floating dtype"),
        ({"param_dtype": object()}, js.errors.ArgumentTypeError, "not a dtype"),
    ],
)
def test_policy_rejects_dtypes_it_cannot_use(kwargs, error, words):
    with pytest.raises(error, match=words):
        js.precision.Policy(**kwargs)


def test_policy_matches_haiku_mixed_precision_bit_for_bit():
    hk = pytest.importorskip("haiku")
    jmp = pytest.importorskip("jmp")

    class MLP(hk.Module):
        def __call__(self, x):
            return hk.Linear(4)(jax.nn.relu(hk.Linear(8)(x)))

    x = jnp.asarray(randn(3, 5))
    policy = jmp.Policy(jnp.float32, jnp.bfloat16, jnp.float32)
    with hk.mixed_precision.push_policy(MLP, policy):
        haiku = hk.without_apply_rng(hk.transform(lambda x: MLP()(x)))
        hk_params = haiku.init(jax.random.key(0), x)
        expected = jax.jit(haiku.apply)(hk_params, x)

    def mlp(x):
        with js.variable_scope("mlp", custom_getter=BF16.getter):
            h = js.nn.dense(BF16.cast_to_compute(x), 8, jax.nn.relu)
            return BF16.cast_to_output(js.nn.dense(h, 4))

    # Haiku names its modules as they are built: Linear(4) first.
    names = {"dense": "mlp/linear_1", "dense_1": "mlp/linear"}
    params = {
        "mlp": {
            ours: {"kernel": hk_params[theirs]["w"], "bias": hk_params[theirs]["b"]}
            for ours, theirs in names.items()
        }
    }
    f = js.transform(mlp)
    assert dtypes(f.init(0, x)) == dtypes(hk_params) == {"float32"}
    out = jax.jit(f.apply)(params, x)
    assert out.dtype == expected.dtype == jnp.float32
    np.testing.assert_array_equal(out, expected)


# --- TF1's getter ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["nvidia_verbatim", "js.precision"])
def test_float32_storage_getter_gives_tf1_names_and_dtypes(which):
    tf = legacy_tf()
    from .tf1_adapter import JS, nvidia_float32_variable_storage_getter

    v1 = tf.compat.v1
    x = randn(2, 3)

    def build():
        getter = nvidia_float32_variable_storage_getter(tf)
        with v1.variable_scope("fp32_vars", custom_getter=getter):
            h = v1.layers.dense(tf.cast(x, tf.float16), 8, activation=tf.nn.relu)
            y = v1.layers.dense(h, 4)
            scale = v1.get_variable("scale", [4], tf.float16, v1.random_normal_initializer())
        return y * scale

    tf1 = run_graph(tf, build)
    getter = (
        nvidia_float32_variable_storage_getter(JS.tf)
        if which == "nvidia_verbatim"
        else js.precision.float32_variable_storage_getter
    )

    def fn(x):
        # tf.layers took the variables' dtype from their float16 input;
        # js.nn layers take the scope's.
        with js.variable_scope("fp32_vars", custom_getter=getter, dtype=jnp.float16):
            h = js.nn.dense(x.astype(jnp.float16), 8, jax.nn.relu)
            y = js.nn.dense(h, 4)
            scale = js.get_variable("scale", [4], jnp.float16)
        return y * scale

    f = js.transform(fn)
    params = f.init(0, x)
    assert {k: str(v.dtype) for k, v in js.flatten(params).items()} == {
        k: str(v.dtype) for k, v in tf1.variables.items()
    }
    assert dtypes(params) == {"float32"}
    assert tf1.trainable == set(js.flatten(params))
    out = jax.jit(f.apply)(js.unflatten(tf1.variables), x)
    assert out.dtype == tf1.outputs.dtype == np.float16
    np.testing.assert_allclose(np.asarray(out, np.float32), tf1.outputs, rtol=1e-2, atol=1e-2)


# --- loss scaling ----------------------------------------------------------------------


def mlp(x, policy):
    with js.variable_scope("mlp", custom_getter=policy.getter):
        h = js.nn.dense(policy.cast_to_compute(x), 16, jax.nn.relu)
        return policy.cast_to_output(js.nn.dense(h, 4))


MLP16, MLP32 = (js.transform(lambda x, p=p: mlp(x, p)) for p in (F16, FULL))
X = jnp.asarray(randn(8, 5))


def test_loss_scaling_recovers_float16_gradients_that_underflow_to_zero():
    params = MLP16.init(0, X)

    def tiny_loss(f, p):  # gradients around 1e-10: below float16's smallest subnormal
        return jnp.mean(f.apply(p, X)) * 1e-9

    full = jax.grad(lambda p: tiny_loss(MLP32, p))(params)
    unscaled = jax.grad(lambda p: tiny_loss(MLP16, p))(params)
    assert all(not np.any(g) for g in jax.tree.leaves(unscaled))  # all zero
    scale = js.precision.StaticLossScale(2.0**15)
    grads = scale.unscale(jax.grad(lambda p: scale.scale(tiny_loss(MLP16, p)))(params))
    assert dtypes(grads) == {"float32"}
    for g, f in zip(jax.tree.leaves(grads), jax.tree.leaves(full), strict=True):
        np.testing.assert_allclose(g, f, rtol=0, atol=0.05 * float(jnp.max(jnp.abs(f))))


def make_train_step(f, tx):
    """The documented float16 train step: scale, unscale, skip non-finite."""

    @jax.jit
    def train_step(params, opt_state, loss_scale, x):
        def loss_fn(p):
            return loss_scale.scale(jnp.mean(f.apply(p, x) ** 2))

        grads = loss_scale.unscale(jax.grad(loss_fn)(params))
        finite = js.precision.all_finite(grads)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        params, opt_state = js.precision.select_tree(
            finite, (new_params, new_opt_state), (params, opt_state)
        )
        return params, opt_state, loss_scale.adjust(finite), finite

    return train_step


def bits(tree) -> list[bytes]:
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def test_float16_loss_scaling_skips_a_step_with_an_inf_gradient_bit_identically():
    tx = optax.adam(1e-3)
    params = MLP16.init(0, X)
    opt_state = tx.init(params)
    step = make_train_step(MLP16, tx)
    loss_scale = js.precision.DynamicLossScale(2.0**15, period=10)
    loud = 30 * X  # the scaled backward pass overflows float16 at 2**15
    after, after_opt, next_scale, finite = step(params, opt_state, loss_scale, loud)
    assert not bool(finite)
    assert bits(after) == bits(params) and bits(after_opt) == bits(opt_state)
    assert float(next_scale.loss_scale) == 2.0**14 and int(next_scale.counter) == 0
    # The scale shrinks step by step until the gradients fit; then it trains.
    skipped = 1
    while not bool(finite):
        after, after_opt, next_scale, finite = step(after, after_opt, next_scale, loud)
        skipped += not bool(finite)
    assert 1 < skipped < 15
    assert dtypes(after) == {"float32"} and bits(after) != bits(params)
    assert int(next_scale.counter) == 1


def test_dynamic_loss_scale_follows_jmp_and_keeps_its_settings_through_jit():
    jmp = pytest.importorskip("jmp")
    flags = [True, True, False, True, True, True, False, False, True] + [True] * 7
    ours = js.precision.DynamicLossScale(2.0**4, period=3, factor=4, min_loss_scale=2.0)
    theirs = jmp.DynamicLossScale(
        jnp.float32(2.0**4), period=3, factor=4, min_loss_scale=jnp.float32(2.0)
    )
    adjust = jax.jit(lambda scale, finite: scale.adjust(finite))
    for finite in flags:
        ours = adjust(ours, jnp.array(finite))
        theirs = theirs.adjust(jnp.array(finite))  # eagerly: jmp's jit drops min_loss_scale
        assert float(ours.loss_scale) == float(theirs.loss_scale)
        assert int(ours.counter) == int(theirs.counter)
    assert (ours.period, ours.factor, ours.min_loss_scale) == (3, 4, 2.0)


def test_dynamic_loss_scale_never_grows_past_float32():
    scale = js.precision.DynamicLossScale(3e38, period=1)
    assert float(scale.adjust(jnp.array(True)).loss_scale) == pytest.approx(3e38)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"period": 0}, "period must be a positive int"), ({"factor": 1}, "greater than 1")],
)
def test_dynamic_loss_scale_rejects_settings_that_never_change_it(kwargs, words):
    with pytest.raises(js.errors.ArgumentError, match=words):
        js.precision.DynamicLossScale(2.0**15, **kwargs)


def test_select_tree_needs_a_scalar_bool():
    with pytest.raises(js.errors.ArgumentError, match="scalar bool.*all_finite"):
        js.precision.select_tree(jnp.ones(2, bool), {"w": jnp.ones(2)}, {"w": jnp.zeros(2)})
