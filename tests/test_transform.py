"""``transform`` and ``transform_with_state`` (DESIGN §1).

What ``init`` and ``apply`` return, how they compose with JAX's transforms,
what ``apply`` does with the tree it is given (values only, except for a
reuse lookup of a name not yet obtained in the call), and what a call leaves
behind: nothing, in any thread, also when the model raises.
"""

import functools
import re
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope._src import context

from .conftest import run_both

X = jnp.arange(6.0).reshape(2, 3)


def dense(x, units, name):
    with js.variable_scope(name):
        w = js.get_variable("w", [x.shape[-1], units])
        b = js.get_variable("b", [units], initializer=js.initializers.zeros)
    return x @ w + b


def linear(x):
    return dense(x, 4, "dense")


def counter(x):
    """A model with state: counts its calls and keeps the last input's sum."""
    n = js.get_variable("n", [], jnp.int32, trainable=False)
    js.assign("n", n + 1)
    with js.variable_scope("stats"):
        total = js.get_variable("total", [], initializer=0.0, trainable=False)
        js.assign("total", total + jnp.sum(x))
    return dense(x, 2, "dense")


def assert_trees_equal(a, b):
    """Same structure and bit-identical leaves."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def shapes(tree):
    return jax.tree.map(jnp.shape, tree)


# --- What init and apply return ---------------------------------------------


def test_transform_returns_transformed_with_init_and_apply():
    f = js.transform(linear)
    assert isinstance(f, js.Transformed)
    assert callable(f.init) and callable(f.apply)


def test_transform_unpacks_into_init_and_apply():
    init, apply = js.transform(linear)
    params = init(0, X)
    assert shapes(params) == {"dense": {"b": (4,), "w": (3, 4)}}
    assert apply(params, X).shape == (2, 4)


def test_init_returns_the_nested_dict_of_created_variables():
    params = js.transform(linear).init(jax.random.key(0), X)
    assert type(params) is dict and type(params["dense"]) is dict
    assert shapes(params) == {"dense": {"b": (4,), "w": (3, 4)}}


def test_apply_returns_the_model_output_unchanged():
    def model(x):
        return {"y": dense(x, 4, "dense"), "extra": (x, 1)}

    f = js.transform(model)
    params = f.init(0, X)
    out = f.apply(params, X)
    assert set(out) == {"y", "extra"}
    np.testing.assert_allclose(out["y"], X @ params["dense"]["w"] + params["dense"]["b"])
    assert out["extra"][0] is X and out["extra"][1] == 1


def test_init_and_apply_pass_positional_and_keyword_arguments_to_fn():
    def model(x, units, *, scale):
        return scale * dense(x, units, "dense")

    f = js.transform(model)
    params = f.init(0, X, 5, scale=2.0)
    assert shapes(params)["dense"]["w"] == (3, 5)
    np.testing.assert_allclose(
        f.apply(params, X, 5, scale=2.0), 2.0 * (X @ params["dense"]["w"]), rtol=1e-6
    )


def test_init_accepts_a_typed_key_a_raw_key_or_an_int_seed_alike():
    init = js.transform(linear).init
    from_typed = init(jax.random.key(3), X)
    assert_trees_equal(init(jax.random.PRNGKey(3), X), from_typed)
    assert_trees_equal(init(3, X), from_typed)


def test_apply_accepts_a_typed_key_a_raw_key_or_an_int_seed_alike():
    f = js.transform(lambda: js.next_rng_key())
    keys = [f.apply({}, rng=rng) for rng in (jax.random.key(3), jax.random.PRNGKey(3), 3)]
    for key in keys[1:]:
        np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(keys[0]))


def test_init_rejects_an_rng_that_is_not_a_key_or_seed():
    with pytest.raises(TypeError, match="rng must be a JAX PRNG key"):
        js.transform(linear).init("seed", X)


def _generator_model(x):
    yield x * js.get_variable("w", [])


async def _async_model(x):
    return x * js.get_variable("w", [])


@pytest.mark.parametrize("make", [js.transform, js.transform_with_state], ids=["plain", "state"])
@pytest.mark.parametrize(
    "fn",
    [_generator_model, _async_model, functools.partial(_generator_model)],
    ids=["generator", "async", "partial-of-generator"],
)
def test_a_generator_or_async_model_function_is_refused_at_transform(make, fn):
    with pytest.raises(js.errors.ArgumentTypeError) as info:
        make(fn)
    assert isinstance(info.value, TypeError)
    assert "generator or coroutine function" in str(info.value) and "Fix" in str(info.value)


class _LazyModel:
    """A callable object whose call returns a generator: only the call shows it."""

    def __call__(self, x):
        return _generator_model(x)


def test_a_model_returning_a_generator_is_refused_at_init_and_apply():
    f = js.transform(_LazyModel())
    with pytest.raises(js.errors.ArgumentTypeError, match="returning a generator"):
        f.init(0, 1.0)
    with pytest.raises(js.errors.ArgumentTypeError, match="returning a generator"):
        f.apply({"w": jnp.ones(())}, 1.0)
    assert context.current_or_none() is None


def test_transform_with_state_returns_transformed_with_state():
    f = js.transform_with_state(counter)
    assert isinstance(f, js.TransformedWithState)
    init, apply = f
    params, state = init(0, X)
    out, new_state = apply(params, state, X)
    assert out.shape == (2, 2)
    assert shapes(new_state) == shapes(state)


def test_transform_with_state_init_splits_params_and_state():
    params, state = js.transform_with_state(counter).init(0, X)
    assert shapes(params) == {"dense": {"b": (2,), "w": (3, 2)}}
    assert shapes(state) == {"n": (), "stats": {"total": ()}}


def test_transform_with_state_init_returns_initial_state_not_assignments():
    params, state = js.transform_with_state(counter).init(0, X)
    assert int(state["n"]) == 0
    assert float(state["stats"]["total"]) == 0.0


def test_assignments_during_init_are_visible_to_later_reads_in_that_call():
    def model():
        with js.variable_scope("s") as scope:
            v = js.get_variable("v", [], initializer=1.0, trainable=False)
            js.assign("v", v + 10.0)
        with js.variable_scope(scope, reuse=True):
            return js.get_variable("v")

    runs = run_both(model, with_state=True)
    assert float(runs.out_init) == 11.0
    assert float(runs.state["s"]["v"]) == 1.0


def test_transform_with_state_apply_returns_output_and_new_state():
    f = js.transform_with_state(counter)
    params, state = f.init(0, X)
    out, state1 = f.apply(params, state, X)
    np.testing.assert_allclose(out, X @ params["dense"]["w"] + params["dense"]["b"], rtol=1e-6)
    assert int(state1["n"]) == 1
    assert float(state1["stats"]["total"]) == float(jnp.sum(X))
    _, state2 = jax.jit(f.apply)(params, state1, X)
    assert int(state2["n"]) == 2


def test_transform_with_state_apply_does_not_modify_the_given_state():
    f = js.transform_with_state(counter)
    params, state = f.init(0, X)
    f.apply(params, state, X)
    assert int(state["n"]) == 0


def _batch_norm_statistics(x):
    with js.variable_scope("bn"):
        mean = js.get_variable("moving_mean", [x.shape[-1]], trainable=False)
    return x - mean


def test_transform_rejects_a_non_trainable_variable_naming_transform_with_state():
    with pytest.raises(js.errors.StateInStatelessTransformError) as info:
        js.transform(_batch_norm_statistics).init(0, X)
    message = str(info.value)
    assert "bn/moving_mean" in message
    assert "js.transform_with_state" in message


def test_transform_rejects_a_non_trainable_variable_in_apply_too():
    with pytest.raises(js.errors.StateInStatelessTransformError, match="transform_with_state"):
        js.transform(_batch_norm_statistics).apply({"bn": {"moving_mean": jnp.zeros(3)}}, X)


# --- Composition with JAX transforms ----------------------------------------


def test_init_works_under_jit():
    f = js.transform(linear)
    jitted = jax.jit(f.init)(jax.random.key(0), X)
    eager = f.init(jax.random.key(0), X)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, eager)


def test_init_works_under_jit_with_a_traced_int_seed():
    f = js.transform(linear)
    jitted = jax.jit(f.init)(jnp.int32(7), X)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, f.init(7, X))


def test_apply_works_under_jit():
    f = js.transform(linear)
    params = f.init(0, X)
    np.testing.assert_allclose(jax.jit(f.apply)(params, X), f.apply(params, X), rtol=1e-6)


def _model_with_a_flag(x, training=False):
    y = linear(x)
    return 0.5 * y if training else y


def test_apply_works_under_jit_with_a_static_argument_by_name():
    f = js.transform(_model_with_a_flag)
    params = f.init(0, X)
    apply = jax.jit(f.apply, static_argnames="training")
    np.testing.assert_allclose(apply(params, X, training=True), 0.5 * f.apply(params, X))


def test_apply_works_under_jit_with_a_static_argument_by_position():
    f = js.transform(_model_with_a_flag)
    params = f.init(0, X)
    apply = jax.jit(f.apply, static_argnums=2)
    np.testing.assert_allclose(apply(params, X, True), 0.5 * f.apply(params, X))


def test_init_works_under_jit_with_a_static_argument_by_name():
    f = js.transform(_model_with_a_flag)
    params = jax.jit(f.init, static_argnames="training")(jax.random.key(0), X, training=True)
    assert shapes(params) == {"dense": {"b": (4,), "w": (3, 4)}}


def test_gradients_with_respect_to_params_flow_through_apply():
    f = js.transform(linear)
    params = f.init(0, X)

    grads = jax.grad(lambda p: jnp.sum(f.apply(p, X)))(params)

    # d/dw sum(x @ w + b) = sum over the batch of x, for every output unit.
    np.testing.assert_allclose(grads["dense"]["w"], jnp.tile(X.sum(0)[:, None], (1, 4)))
    np.testing.assert_allclose(grads["dense"]["b"], jnp.full((4,), X.shape[0]))


def test_gradients_of_a_reused_variable_accumulate_over_its_uses():
    def model(x):
        with js.variable_scope("layer", reuse=js.AUTO_REUSE):
            a = js.get_variable("scale", [], initializer=2.0)
        with js.variable_scope("layer", reuse=True):
            b = js.get_variable("scale", [])
        return a * b * x

    f = js.transform(model)
    params = f.init(0, 1.0)
    grads = jax.jit(jax.grad(lambda p: f.apply(p, 1.0)))(params)
    assert float(grads["layer"]["scale"]) == 4.0  # d(s*s)/ds at s=2


def test_apply_works_under_vmap_over_inputs_with_shared_params():
    f = js.transform(linear)
    params = f.init(0, X)
    xs = jnp.stack([X, 2 * X, -X])

    batched = jax.vmap(f.apply, in_axes=(None, 0))(params, xs)

    assert batched.shape == (3, 2, 4)
    for i in range(3):
        np.testing.assert_allclose(batched[i], f.apply(params, xs[i]), rtol=1e-6)


def test_init_works_under_vmap_over_rngs():
    f = js.transform(linear)
    keys = jax.random.split(jax.random.key(0), 3)

    ensemble = jax.vmap(f.init, in_axes=(0, None))(keys, X)

    assert shapes(ensemble) == {"dense": {"b": (3, 4), "w": (3, 3, 4)}}
    for i in range(3):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], ensemble)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), member, f.init(keys[i], X)
        )
    assert not np.allclose(ensemble["dense"]["w"][0], ensemble["dense"]["w"][1])


def test_init_under_eval_shape_returns_shape_dtype_structs():
    def model(x):
        with js.variable_scope("emb"):
            table = js.get_variable("table", [1000, 64], jnp.bfloat16)
        return dense(x, 4, "dense"), table

    abstract = jax.eval_shape(js.transform(model).init, jax.random.key(0), X)

    leaves = jax.tree.leaves(abstract)
    assert leaves and all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)
    assert abstract["emb"]["table"].shape == (1000, 64)
    assert abstract["emb"]["table"].dtype == jnp.bfloat16
    assert abstract["dense"]["w"] == jax.ShapeDtypeStruct((3, 4), jnp.float32)


def test_init_under_eval_shape_never_computes_an_initial_value():
    seen = []

    def recording_initializer(key, shape, dtype):
        value = jnp.ones(shape, dtype)
        seen.append(isinstance(value, jax.core.Tracer))
        return value

    def model():
        return js.get_variable("w", [2, 2], initializer=recording_initializer)

    jax.eval_shape(js.transform(model).init, 0)
    assert seen == [True]


def test_init_under_eval_shape_handles_variables_too_large_to_allocate():
    def model():
        return js.get_variable("huge", [1 << 20, 1 << 20])  # 4 TiB of float32

    abstract = jax.eval_shape(js.transform(model).init, 0)
    assert abstract["huge"] == jax.ShapeDtypeStruct((1 << 20, 1 << 20), jnp.float32)


def test_transform_with_state_under_eval_shape_returns_abstract_params_and_state():
    params, state = jax.eval_shape(js.transform_with_state(counter).init, 0, X)
    assert params["dense"]["w"] == jax.ShapeDtypeStruct((3, 2), jnp.float32)
    assert state["n"] == jax.ShapeDtypeStruct((), jnp.int32)


# --- Determinism --------------------------------------------------------------


def test_init_gives_bit_identical_params_for_identical_inputs():
    init = js.transform(linear).init
    assert_trees_equal(init(jax.random.key(5), X), init(jax.random.key(5), X))
    fresh = js.transform(linear).init  # a new transform of the same function
    assert_trees_equal(fresh(jax.random.key(5), X), init(jax.random.key(5), X))


def test_jitted_init_gives_bit_identical_params_for_identical_inputs():
    init = jax.jit(js.transform(linear).init)
    assert_trees_equal(init(jax.random.key(5), X), init(jax.random.key(5), X))


def test_apply_gives_bit_identical_outputs_for_identical_inputs():
    def model(x):
        y = linear(x)
        return jnp.where(jax.random.bernoulli(js.next_rng_key(), 0.5, y.shape), y, 0.0)

    f = js.transform(model)
    params = f.init(0, X)
    for apply in (f.apply, jax.jit(f.apply)):
        assert_trees_equal(
            apply(params, X, rng=jax.random.key(1)), apply(params, X, rng=jax.random.key(1))
        )


def test_init_with_different_rngs_gives_different_params():
    init = js.transform(linear).init
    assert not np.allclose(init(0, X)["dense"]["w"], init(1, X)["dense"]["w"])


# --- apply uses the given tree for values only ------------------------------


def test_init_and_apply_each_run_fn_exactly_once():
    calls = []

    def model(x):
        calls.append("call")
        return linear(x)

    f = js.transform(model)
    params = f.init(0, X)
    assert len(calls) == 1
    f.apply(params, X)
    assert len(calls) == 2


def test_apply_returns_the_given_leaves_as_the_variables_values():
    seen = []

    def model(x):
        with js.variable_scope("dense"):
            w = js.get_variable("w", [3, 4])
        seen.append(w)
        return x @ w

    f = js.transform(model)
    params = {"dense": {"w": jnp.ones((3, 4))}}
    f.apply(params, X)
    assert seen[-1] is params["dense"]["w"]


def test_apply_never_runs_initializers():
    calls = []

    def initializer(key, shape, dtype):
        calls.append(shape)
        return jnp.zeros(shape, dtype)

    def model(x):
        return x @ js.get_variable("w", [3, 4], initializer=initializer)

    f = js.transform(model)
    params = f.init(0, X)
    calls.clear()
    f.apply(params, X)
    jax.jit(f.apply)(params, X)
    assert calls == []


def test_apply_needs_no_rng_for_variables_init_drew_keys_for():
    f = js.transform(linear)
    params = f.init(0, X)
    assert f.apply(params, X, rng=None).shape == (2, 4)


def test_apply_does_not_modify_or_extend_the_given_tree():
    def model(x):
        with js.variable_scope("dense", reuse=js.AUTO_REUSE):
            return x @ js.get_variable("w", [3, 4])

    f = js.transform(model)
    params = f.init(0, X)
    before = jax.tree.map(lambda a: a, params)
    f.apply(params, X)
    assert_trees_equal(params, before)
    assert list(params) == ["dense"] and list(params["dense"]) == ["w"]


def test_check_unused_reads_any_mapping_as_a_sub_tree():
    def model():
        with js.variable_scope("dense"):
            return js.get_variable("kernel", [2])

    f = js.transform_with_state(model, check_unused=True)
    params = {"dense": types.MappingProxyType({"kernel": jnp.ones(2)})}
    state = types.MappingProxyType({})
    out, _ = f.apply(params, state)
    np.testing.assert_array_equal(out, jnp.ones(2))
    extra = {"dense": types.MappingProxyType({"kernel": jnp.ones(2), "bias": jnp.ones(2)})}
    with pytest.raises(js.errors.UnusedVariableError, match="dense/bias"):
        f.apply(extra, state)


def test_apply_obtains_a_name_a_second_time_as_a_reuse_like_init():
    """The bookkeeping in apply is init's: the second reuse=False creation of a
    name is an error, even though the tree holds the name."""

    def model():
        with js.variable_scope("foo"):
            js.get_variable("v", [1])
        with js.variable_scope("foo"):
            js.get_variable("v", [1])

    with pytest.raises(js.errors.VariableExistsError, match="foo/v"):
        js.transform(model).init(0)
    with pytest.raises(js.errors.VariableExistsError, match="foo/v"):
        js.transform(model).apply({"foo": {"v": jnp.zeros(1)}})


# --- The same scope errors in init and apply --------------------------------


def _create_twice():
    with js.variable_scope("a"):
        js.get_variable("v", [1])
    with js.variable_scope("a"):
        js.get_variable("v", [1])


def _reuse_with_another_shape():
    with js.variable_scope("a"):
        js.get_variable("v", [1])
    with js.variable_scope("a", reuse=True):
        js.get_variable("v", [2])


def _reuse_with_another_dtype():
    with js.variable_scope("a"):
        js.get_variable("v", [1])
    with js.variable_scope("a", reuse=True):
        js.get_variable("v", [1], jnp.bfloat16)


def _leaf_and_subtree():
    with js.variable_scope("a"):
        js.get_variable("v", [1])
        js.get_variable("v/w", [1])


def _invalid_name():
    with js.variable_scope("a"):
        js.get_variable("v:0", [1])


def _default_name_with_reuse():
    with js.variable_scope(None, default_name="a", reuse=True):
        js.get_variable("v", [1])


def _out_of_order_exit():
    outer, inner = js.variable_scope("a"), js.variable_scope("b")
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)


def _scope_left_open():
    js.variable_scope("a").__enter__()
    js.get_variable("v", [1])


def _no_shape():
    with js.variable_scope("a"):
        js.get_variable("v")


def _non_trainable_in_transform():
    with js.variable_scope("a"):
        js.get_variable("v", [1], trainable=False)


def _created_inside_raw_vmap():
    jax.vmap(lambda x: x * js.get_variable("a/v", [1]))(jnp.ones((2, 1)))


def _assign_to_trainable():
    with js.variable_scope("a"):
        js.get_variable("v", [1])
        js.assign("v", jnp.ones(1))


SAME_ERROR_PROGRAMS = [
    pytest.param(_create_twice, js.errors.VariableExistsError, id="exists"),
    pytest.param(_reuse_with_another_shape, js.errors.ShapeMismatchError, id="shape"),
    pytest.param(_reuse_with_another_dtype, js.errors.DtypeMismatchError, id="dtype"),
    pytest.param(_leaf_and_subtree, js.errors.NameConflictError, id="conflict"),
    pytest.param(_invalid_name, js.errors.InvalidNameError, id="invalid-name"),
    pytest.param(_default_name_with_reuse, js.errors.ScopeArgumentError, id="default-reuse"),
    pytest.param(_out_of_order_exit, js.errors.ScopeNestingError, id="out-of-order"),
    pytest.param(_scope_left_open, js.errors.ScopeNestingError, id="left-open"),
    pytest.param(_no_shape, js.errors.InitializerError, id="no-shape"),
    pytest.param(
        _non_trainable_in_transform, js.errors.StateInStatelessTransformError, id="stateless"
    ),
    pytest.param(_created_inside_raw_vmap, js.errors.RawTransformError, id="raw-vmap"),
    pytest.param(_assign_to_trainable, js.errors.AssignError, id="assign"),
]


@pytest.mark.parametrize("program, error", SAME_ERROR_PROGRAMS)
def test_a_program_raises_the_same_scope_error_in_init_and_apply(program, error):
    f = js.transform(program)
    tree = {"a": {"v": jnp.zeros(1)}}  # holds every name the programs look up
    with pytest.raises(error):
        f.init(0)
    with pytest.raises(error):
        f.apply(tree)
    with pytest.raises(error):
        jax.jit(f.apply)(tree)


def test_a_missing_reuse_in_apply_with_a_tree_lacking_the_name_raises_like_init():
    def model():
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [1])

    f = js.transform(model)
    with pytest.raises(js.errors.VariableMissingError, match="a/v"):
        f.init(0)
    with pytest.raises(js.errors.VariableMissingError, match="a/v"):
        f.apply({"b": {"v": jnp.zeros(1)}})


# --- The one exception: reuse lookups find names in apply's tree -----------


def test_a_reuse_true_lookup_in_apply_finds_a_name_not_created_in_the_call():
    def model():
        with js.variable_scope("a", reuse=True):
            return js.get_variable("v", [2])

    f = js.transform(model)
    tree = {"a": {"v": jnp.array([1.0, 2.0])}}
    np.testing.assert_array_equal(f.apply(tree), [1.0, 2.0])
    np.testing.assert_array_equal(jax.jit(f.apply)(tree), [1.0, 2.0])


def test_an_auto_reuse_lookup_in_apply_finds_a_name_not_created_in_the_call():
    def model():
        with js.variable_scope("a", reuse=js.AUTO_REUSE):
            return js.get_variable("v", [2])

    tree = {"a": {"v": jnp.array([1.0, 2.0])}}
    np.testing.assert_array_equal(js.transform(model).apply(tree), [1.0, 2.0])


def test_a_reuse_lookup_in_apply_still_checks_the_stored_shape():
    def model():
        with js.variable_scope("a", reuse=True):
            return js.get_variable("v", [3])

    with pytest.raises(js.errors.ShapeMismatchError, match="a/v"):
        js.transform(model).apply({"a": {"v": jnp.zeros(2)}})


def _trunk(x):
    h = jax.nn.relu(dense(x, 8, "hidden"))
    return dense(h, 2, "logits")


def test_an_inference_function_written_under_reuse_true_runs_on_trained_params():
    def train_model(x):
        with js.variable_scope("net"):
            return _trunk(x)

    def infer_model(x):
        with js.variable_scope("net", reuse=True):
            return jax.nn.softmax(_trunk(x))

    train = js.transform(train_model)
    params = train.init(0, X)
    infer = js.transform(infer_model)

    probs = jax.jit(infer.apply)(params, X)

    np.testing.assert_allclose(probs, jax.nn.softmax(train.apply(params, X)), rtol=1e-6)


def test_the_init_of_an_inference_function_under_reuse_true_fails():
    def infer_model(x):
        with js.variable_scope("net", reuse=True):
            return _trunk(x)

    with pytest.raises(js.errors.VariableMissingError, match="net/hidden/w"):
        js.transform(infer_model).init(0, X)


def test_after_a_reuse_lookup_in_apply_a_reuse_false_creation_of_the_name_errors():
    def model():
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [1])
        with js.variable_scope("a"):
            js.get_variable("v", [1])  # a second creation, as it would be in init

    with pytest.raises(js.errors.VariableExistsError, match="a/v"):
        js.transform(model).apply({"a": {"v": jnp.zeros(1)}})


def test_after_a_reuse_lookup_in_apply_later_obtains_are_reuses_of_the_same_value():
    def model():
        with js.variable_scope("a", reuse=True):
            first = js.get_variable("v", [1])
        with js.variable_scope("a", reuse=True):
            second = js.get_variable("v", [1])
        assert second is first
        return second

    js.transform(model).apply({"a": {"v": jnp.zeros(1)}})


# --- Per-call bookkeeping ----------------------------------------------------


def test_a_call_leaves_no_transform_active_behind():
    js.transform(linear).init(0, X)
    with pytest.raises(js.errors.NoTransformError):
        js.get_variable("w", [1])


def test_a_call_that_raises_midway_leaves_nothing_behind():
    def broken(x):
        with js.variable_scope("outer"):
            with js.variable_scope(None, default_name="layer"):
                js.get_variable("w", [1])
                raise KeyError("midway")

    names = []

    def model(x):
        with js.variable_scope("outer"):
            with js.variable_scope(None, default_name="layer") as scope:
                names.append(scope.name)
                js.get_variable("w", [1])
        return x

    with pytest.raises(KeyError, match="midway"):
        js.transform(broken).init(0, X)
    with pytest.raises(js.errors.NoTransformError):
        js.get_variable("w", [1])
    with pytest.raises(js.errors.NoTransformError):
        js.get_variable_scope()

    params = js.transform(model).init(0, X)  # the next call works from scratch
    assert names == ["outer/layer"]
    assert shapes(params) == {"outer": {"layer": {"w": (1,)}}}


def test_a_call_that_raises_with_a_scope_open_leaves_no_op_name_scope_open():
    def broken():
        js.variable_scope("leaked").__enter__()  # a scope the exception never exits
        raise KeyError("midway")

    def traced(x):
        with pytest.raises(KeyError):
            js.transform(broken).init(0)
        return jnp.sin(x)

    jaxpr = jax.make_jaxpr(traced)(1.0)
    (sin,) = [e for e in jaxpr.eqns if e.primitive.name == "sin"]
    assert "leaked" not in str(sin.source_info.name_stack)


def test_a_scope_left_open_at_the_end_of_fn_leaves_no_op_name_scope_open():
    def traced(x):
        with pytest.raises(js.errors.ScopeNestingError):
            js.transform(_scope_left_open).init(0)
        return jnp.sin(x)

    jaxpr = jax.make_jaxpr(traced)(1.0)
    (sin,) = [e for e in jaxpr.eqns if e.primitive.name == "sin"]
    assert str(sin.source_info.name_stack) == ""


def test_default_name_numbering_starts_afresh_in_every_call():
    names = []

    def model():
        with js.variable_scope(None, default_name="layer") as scope:
            names.append(scope.name)
            js.get_variable("w", [1])

    f = js.transform(model)
    params = f.init(0)
    f.apply(params)
    f.init(0)
    assert names == ["layer"] * 3


def test_threads_running_different_models_never_see_each_others_scopes():
    n = 4
    barrier = threading.Barrier(n, timeout=20)

    def make_model(i):
        def model(x):
            with js.variable_scope(f"model{i}"):
                barrier.wait()  # every thread is inside its own scope now
                seen = js.get_variable_scope().name
                w = js.get_variable("w", [x.shape[-1], i + 1])
                barrier.wait()
                seen_after = js.get_variable_scope().name
            return seen, seen_after, x @ w

        return model

    def run(i):
        try:
            init_seen = []

            def recorded(x):
                seen, seen_after, y = make_model(i)(x)
                init_seen.append((seen, seen_after))
                return y

            f = js.transform(recorded)
            params = f.init(i, X)
            out = f.apply(params, X)
            return init_seen, params, out
        except BaseException:
            barrier.abort()
            raise

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(run, range(n)))

    for i, (seen, params, out) in enumerate(results):
        assert seen == [(f"model{i}", f"model{i}")] * 2  # init, then apply
        assert shapes(params) == {f"model{i}": {"w": (3, i + 1)}}
        np.testing.assert_allclose(out, X @ params[f"model{i}"]["w"], rtol=1e-6)


# --- Nested transforms -------------------------------------------------------


def test_apply_of_another_transformed_function_works_inside_fn():
    inner = js.transform(linear)
    inner_params = inner.init(1, X)

    def outer(x):
        with js.variable_scope("head"):
            h = inner.apply(inner_params, x)
            scale = js.get_variable("scale", [], initializer=3.0)
        return scale * h

    runs = run_both(outer, X)

    assert shapes(runs.params) == {"head": {"scale": ()}}
    np.testing.assert_allclose(runs.out_jit, 3.0 * inner.apply(inner_params, X), rtol=1e-6)


def test_a_nested_calls_names_never_collide_with_the_callers():
    inner = js.transform(linear)  # creates dense/w and dense/b in its own call
    inner_params = inner.init(1, X)

    def outer(x):
        h = linear(x)  # the caller's own dense/w and dense/b
        return h + inner.apply(inner_params, x)

    runs = run_both(outer, X)
    assert shapes(runs.params) == {"dense": {"b": (4,), "w": (3, 4)}}
    assert not np.allclose(runs.params["dense"]["w"], inner_params["dense"]["w"])


def test_a_nested_call_uses_its_own_root_scope_not_the_callers():
    names = []

    def inner_model(x):
        names.append(js.get_variable_scope().name)
        return linear(x)

    inner = js.transform(inner_model)

    def outer(x):
        with js.variable_scope("outer"):
            params = inner.init(js.next_rng_key(), x)
            names.append(js.get_variable_scope().name)
        return params

    inner_params = js.transform(outer).apply({}, X, rng=jax.random.key(0))
    assert names == ["", "outer"]
    assert shapes(inner_params) == {"dense": {"b": (4,), "w": (3, 4)}}


def test_a_nested_init_can_run_inside_a_raw_vmap_in_fn():
    inner = js.transform(linear)

    def outer(x):
        keys = jax.random.split(js.next_rng_key(), 3)
        ensemble = jax.vmap(inner.init, in_axes=(0, None))(keys, x)
        return jax.vmap(inner.apply, in_axes=(0, None))(ensemble, x)

    out = js.transform(outer).apply({}, X, rng=jax.random.key(0))
    assert out.shape == (3, 2, 4)


# --- apply's arguments ---------------------------------------------------------


def test_apply_with_an_array_as_params_is_a_typed_error_with_the_fix():
    f = js.transform(linear)
    with pytest.raises(js.errors.InvalidParamsError) as info:
        f.apply(X, X)
    message = str(info.value)
    assert "params" in message and "init" in message
    assert "Fix" in message and "f.apply(params" in message


def test_apply_with_an_array_as_params_is_the_same_error_under_jit():
    with pytest.raises(js.errors.InvalidParamsError, match="params"):
        jax.jit(js.transform(linear).apply)(X, X)


def test_apply_with_the_rng_first_is_a_typed_error_with_the_fix():
    f = js.transform(linear)
    params = f.init(0, X)
    with pytest.raises(js.errors.InvalidParamsError, match=r"f\.apply\(params"):
        f.apply(jax.random.key(0), params, X)


def test_stateful_apply_without_the_state_is_a_typed_error_with_the_fix():
    f = js.transform_with_state(counter)
    params, _ = f.init(0, X)
    with pytest.raises(js.errors.InvalidParamsError) as info:
        f.apply(params, X)
    message = str(info.value)
    assert "state" in message and re.search(r"f\.apply\(params, state", message)


def test_stateful_apply_given_inits_pair_as_params_is_a_typed_error_with_the_fix():
    f = js.transform_with_state(counter)
    both = f.init(0, X)
    with pytest.raises(js.errors.InvalidParamsError) as info:
        f.apply(both, X)
    message = str(info.value)
    assert "tuple" in message and "f.apply(params, state" in message


# --- Acceptance: under jit the machinery disappears ---------------------------


def _scoped_mlp(x):
    h = jax.nn.relu(dense(x, 8, "layer1"))
    with js.variable_scope("shared", reuse=js.AUTO_REUSE):
        h = jax.nn.relu(dense(h, 8, "block"))
        h = jax.nn.relu(dense(h, 8, "block"))  # the same layer, reused
    h = jax.nn.relu(dense(h, 8, "layer2"))
    return dense(h, 2, "layer3")


def _hand_written_mlp(params, x):
    def layer(p, x):
        return x @ p["w"] + p["b"]

    h = jax.nn.relu(layer(params["layer1"], x))
    h = jax.nn.relu(layer(params["shared"]["block"], h))
    h = jax.nn.relu(layer(params["shared"]["block"], h))
    h = jax.nn.relu(layer(params["layer2"], h))
    return layer(params["layer3"], h)


def _jitted_body(fn, *args):
    """The jaxpr of ``jax.jit(fn)``'s body: the outer jaxpr is one ``jit``
    equation that only differs by the function's name."""
    outer = jax.make_jaxpr(jax.jit(fn))(*args)
    (call,) = outer.eqns
    return call.params["jaxpr"]


def _primitive_sequence(jaxpr):
    """(primitive, params) of every equation, nested jaxprs flattened in."""
    out = []
    for eqn in jaxpr.eqns:
        params = {}
        for key, value in eqn.params.items():
            sub = getattr(value, "jaxpr", value)
            if isinstance(sub, jax.extend.core.Jaxpr):
                out.extend(_primitive_sequence(sub))
            elif key != "name":
                params[key] = str(value)
        out.append((eqn.primitive.name, params))
    return out


def test_jitted_apply_has_the_jaxpr_of_the_hand_written_model():
    f = js.transform(_scoped_mlp)
    x = jnp.ones((4, 3))
    params = f.init(0, x)
    assert shapes(params)["shared"] == {"block": {"b": (8,), "w": (8, 8)}}

    scoped = _jitted_body(f.apply, params, x)
    hand = _jitted_body(_hand_written_mlp, params, x)

    assert [v.aval for v in scoped.jaxpr.invars] == [v.aval for v in hand.jaxpr.invars]
    assert _primitive_sequence(scoped.jaxpr) == _primitive_sequence(hand.jaxpr)
    assert str(scoped) == str(hand)  # variables are named by order, so this is exact


def test_jitted_apply_lowers_to_the_hlo_of_the_hand_written_model():
    f = js.transform(_scoped_mlp)
    x = jnp.ones((4, 3))
    params = f.init(0, x)

    def hlo(fn):
        text = jax.jit(fn).lower(params, x).as_text()  # no debug info: no op names
        return re.sub(r"module @[\w.]+", "module @m", text)

    assert hlo(f.apply) == hlo(_hand_written_mlp)
