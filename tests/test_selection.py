"""js.select, js.partition, js.merge and js.labels (DESIGN §7): selecting
variables by scope, and training one part of a model with its own optimizer
(a GAN) while the other stays bit-identical, as TF1's
``minimize(var_list=...)`` does."""

from __future__ import annotations

import warnings

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings

import jaxscope as js
from jaxscope import errors

TREE = {
    "enc": {"w": 1, "b": 2},
    "encoder": {"w": 3},
    "gan": {"gen": {"w": 4}, "disc": {"w": 5, "bn": {"gamma": 6}}},
}


# select and partition


def test_select_keeps_the_full_paths_under_a_scope():
    assert js.select(TREE, "gan/disc") == {"gan": {"disc": {"w": 5, "bn": {"gamma": 6}}}}


def test_select_matches_whole_name_components():
    assert js.select(TREE, "enc") == {"enc": {"w": 1, "b": 2}}  # not encoder/w


def test_select_takes_several_scopes_a_leaf_and_a_captured_scope():
    captured = []

    def model():
        with js.variable_scope("disc") as scope:
            captured.append(scope)
            js.get_variable("w", [1])

    js.transform(model).init(0)
    assert js.select(TREE, "encoder", "gan/gen/w") == {
        "encoder": {"w": 3},
        "gan": {"gen": {"w": 4}},
    }
    assert js.select({"disc": {"w": 1}, "gen": {"w": 2}}, captured[0]) == {"disc": {"w": 1}}


def test_select_predicate_gets_each_full_name_and_leaf():
    seen = []

    def predicate(name, leaf):
        seen.append((name, leaf))
        return leaf % 2 == 0

    assert js.select(TREE, "gan", predicate=predicate) == {
        "gan": {"gen": {"w": 4}, "disc": {"bn": {"gamma": 6}}}
    }
    assert sorted(seen) == [("gan/disc/bn/gamma", 6), ("gan/disc/w", 5), ("gan/gen/w", 4)]


def test_select_of_a_scope_that_holds_nothing_names_the_nearest_scope():
    with pytest.raises(errors.SelectionError, match=r"'gan/dics'.*gan/disc.*js\.flatten"):
        js.select(TREE, "gan/dics")
    with pytest.raises(ValueError, match="'en'"):  # a prefix of a name is not a scope
        js.select(TREE, "en")


def test_select_rejects_an_invalid_scope_name():
    with pytest.raises(errors.InvalidNameError):
        js.select(TREE, "a//b")
    with pytest.raises(TypeError, match="scope is a name"):
        js.select(TREE, 3)


names = st.text("abc", min_size=1, max_size=2)
trees = st.recursive(
    st.integers(), lambda children: st.dictionaries(names, children, min_size=1), max_leaves=8
).filter(lambda t: isinstance(t, dict))


@settings(max_examples=40, deadline=None)
@given(tree=trees, data=st.data())
def test_partition_halves_merge_back_to_the_tree(tree, data):
    scope = data.draw(st.sampled_from(sorted({name.split("/")[0] for name in js.flatten(tree)})))
    selected, rest = js.partition(tree, predicate=lambda name, leaf: leaf % 2 == 0)
    assert js.merge(selected, rest) == js.unflatten(js.flatten(tree))
    selected, rest = js.partition(tree, scope)
    assert set(js.flatten(selected)) == {
        n for n in js.flatten(tree) if n == scope or n.startswith(scope + "/")
    }
    assert js.merge(rest, selected) == js.unflatten(js.flatten(tree))


# merge


def test_merge_of_two_trees_holding_one_variable_names_it():
    with pytest.raises(errors.MergeConflictError, match=r"trees 0 and 1 both hold variable a/b"):
        js.merge({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}})


@pytest.mark.parametrize(
    "trees_, words",
    [
        (({"a": {"b": 1}}, {"a": {"b": {"c": 2}}}), r"tree 0 holds variable a/b and tree 1"),
        (({"a": {"b": {"c": 2}}}, {"a": {"b": 1}}), r"tree 1 holds variable a/b and tree 0"),
    ],
)
def test_merge_of_a_variable_and_a_scope_of_the_same_name_names_both(trees_, words):
    with pytest.raises(errors.MergeConflictError, match=words):
        js.merge(*trees_)


def test_merge_conflict_is_a_value_error():
    assert issubclass(errors.MergeConflictError, ValueError)
    assert issubclass(errors.SelectionError, errors.ScopeError)


# labels


def test_labels_give_the_innermost_scope_label_else_the_default():
    labels = js.labels(TREE, {"gan": "gan", "gan/disc": "disc"}, default="rest")
    assert labels == {
        "enc": {"w": "rest", "b": "rest"},
        "encoder": {"w": "rest"},
        "gan": {"gen": {"w": "gan"}, "disc": {"w": "disc", "bn": {"gamma": "disc"}}},
    }


def test_labels_without_default_name_the_unlabelled_variable():
    with pytest.raises(errors.SelectionError, match=r"2 variable\(s\) .*enc/b, enc/w.*default="):
        js.labels(TREE, {"encoder": "e", "gan": "g"})


def test_labels_of_a_misspelled_scope_is_an_error_not_a_frozen_model():
    with pytest.raises(errors.SelectionError, match="'gan/discriminator'"):
        js.labels(TREE, {"gan/discriminator": "d"}, default="frozen")


# Training part of a model: a tiny GAN, checked against TF1's minimize(var_list=...)

LR, BATCH, NOISE, DATA, HIDDEN = 0.1, 4, 3, 2, 5
RNG = np.random.default_rng(0)
Z = RNG.standard_normal((BATCH, NOISE)).astype(np.float32)
REAL = RNG.standard_normal((BATCH, DATA)).astype(np.float32) + 2


def generator(z):
    with js.variable_scope("generator"):
        return js.nn.dense(jnp.tanh(js.nn.dense(z, HIDDEN, name="hidden")), DATA, name="out")


def discriminator(x, reuse=None):
    with js.variable_scope("discriminator", reuse=reuse):
        return js.nn.dense(jnp.tanh(js.nn.dense(x, HIDDEN, name="hidden")), 1, name="out")


def gan_losses(z, real):
    real_logits = discriminator(real)
    fake_logits = discriminator(generator(z), reuse=True)
    d_loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    g_loss = jnp.mean(jax.nn.softplus(-fake_logits))
    return d_loss, g_loss


GAN = js.transform(gan_losses)


def trains_only(params, scope, inner):
    """TF1's ``optimizer.minimize(loss, var_list=trainable_variables(scope))``."""
    labels = js.labels(params, {scope: "train"}, default="frozen")
    return optax.multi_transform({"train": inner, "frozen": optax.set_to_zero()}, labels)


def gan_step(params, tx, opt_state, which):
    grads = jax.grad(lambda p: GAN.apply(p, Z, REAL)[which])(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def test_frozen_network_stays_bit_identical_through_steps_of_the_other():
    params = GAN.init(0, Z, REAL)
    d_tx = trains_only(params, "discriminator", optax.adam(1e-2))
    g_tx = trains_only(params, "generator", optax.adam(1e-2))
    d_state, g_state = d_tx.init(params), g_tx.init(params)
    step = jax.jit(gan_step, static_argnums=(1, 3))
    start = params
    for _ in range(3):
        params, d_state = step(params, d_tx, d_state, 0)
    for name, leaf in js.flatten(js.select(start, "generator")).items():
        np.testing.assert_array_equal(js.flatten(params)[name], leaf)
    assert not np.array_equal(
        params["discriminator"]["out"]["kernel"], start["discriminator"]["out"]["kernel"]
    )
    moved = params
    for _ in range(3):
        params, g_state = step(params, g_tx, g_state, 1)
    for name, leaf in js.flatten(js.select(moved, "discriminator")).items():
        np.testing.assert_array_equal(js.flatten(params)[name], leaf)


def tf1_gan(tf):
    """The same GAN in TF1 graph mode, with get_variable (no Keras)."""
    v1 = tf.compat.v1

    def dense(x, units, name):
        with v1.variable_scope(name):
            kernel = v1.get_variable("kernel", [x.shape[-1], units])
            return tf.matmul(x, kernel) + v1.get_variable("bias", [units])

    def discriminator(x, reuse=None):
        with v1.variable_scope("discriminator", reuse=reuse):
            return dense(tf.tanh(dense(x, HIDDEN, "hidden")), 1, "out")

    with v1.variable_scope("generator"):
        fake = dense(tf.tanh(dense(tf.constant(Z), HIDDEN, "hidden")), DATA, "out")
    real_logits = discriminator(tf.constant(REAL))
    fake_logits = discriminator(fake, reuse=True)
    d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
        tf.nn.softplus(fake_logits)
    )
    g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
    return d_loss, g_loss


@pytest.mark.parametrize("which, scope", [(0, "discriminator"), (1, "generator")])
def test_one_sgd_step_matches_tf1_minimize_with_var_list(which, scope):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = pytest.importorskip("tensorflow")
    from .tf1_graph import run_graph

    v1 = tf.compat.v1
    params = GAN.init(0, Z, REAL)

    def tf_step():
        loss = tf1_gan(tf)[which]
        var_list = v1.trainable_variables(scope)
        return v1.train.GradientDescentOptimizer(LR).minimize(loss, var_list=var_list)

    tf_run = run_graph(tf, tf_step, js.flatten(params))
    tx = trains_only(params, scope, optax.sgd(LR))
    new_params, _ = jax.jit(gan_step, static_argnums=(1, 3))(params, tx, tx.init(params), which)
    flat = js.flatten(new_params)
    assert set(flat) == set(tf_run.variables)
    for name, value in flat.items():
        np.testing.assert_allclose(value, tf_run.variables[name], rtol=1e-6, atol=1e-6)
        if not name.startswith(scope):
            np.testing.assert_array_equal(value, js.flatten(params)[name])
