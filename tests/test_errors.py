"""The error hierarchy (DESIGN §8): one program per error type.

Every error derives from ``js.errors.ScopeError`` and from the built-in type
TF1 raised in the same situation, and its message names the full variable
path and the fix. Programs run through ``init`` and, where the error is the
same there, through jitted ``apply``.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import run_both

ALL_ERRORS = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and name != "ScopeError"
]

# The built-in type each error keeps, as TF1 raised it: ValueError for a
# variable that exists, is missing, or has the wrong shape or dtype (and bad
# arguments); RuntimeError for misuse of the machinery.
TF1_BASE = {
    errors.VariableExistsError: ValueError,
    errors.VariableMissingError: ValueError,
    errors.ShapeMismatchError: ValueError,
    errors.DtypeMismatchError: ValueError,
    errors.InvalidNameError: ValueError,
    errors.NameConflictError: ValueError,
    errors.InitializerError: ValueError,
    errors.InvalidParamsError: ValueError,
    errors.ArgumentError: ValueError,
    errors.ScopeArgumentError: ValueError,
    errors.ArgumentTypeError: TypeError,
    errors.LiftError: RuntimeError,
    errors.LayerBodyError: TypeError,
    errors.AssignError: ValueError,
    errors.MissingRNGError: ValueError,
    errors.ShardingError: ValueError,
    errors.UnusedVariableError: ValueError,
    errors.FlaxModuleTypeError: TypeError,
    errors.SelectionError: ValueError,
    errors.MergeConflictError: ValueError,
    errors.TemplateVariableError: ValueError,
    errors.ScopeNestingError: RuntimeError,
    errors.NoTransformError: RuntimeError,
    errors.StaleScopeError: RuntimeError,
    errors.StateInStatelessTransformError: RuntimeError,
    errors.RawTransformError: RuntimeError,
    # Checkpoints, TF1 checkpoints and Haiku params (TF1's Saver raises
    # ValueError for a path without a checkpoint and for one that does not fit).
    **{
        getattr(errors, name): ValueError
        for name in errors.__all__
        if name.startswith(("Checkpoint", "TF1", "Haiku")) and name != "TF1DependencyError"
    },
    errors.TF1DependencyError: ImportError,
}


def raises_in_init_and_apply(model, error, tree, *args):
    """Runs ``model`` through init and jitted apply (on ``tree``); both must
    raise ``error``. Returns the message of the init error."""
    f = js.transform(model)
    with pytest.raises(error) as init_info:
        f.init(0, *args)
    with pytest.raises(error) as apply_info:
        jax.jit(f.apply)(tree, *args)
    assert type(init_info.value) is type(apply_info.value)
    return str(init_info.value)


def line_of(fn, text):
    """``file:line`` of the first line of ``fn`` containing ``text``."""
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{fn.__code__.co_filename}:{start + offset}"


# --- The hierarchy -------------------------------------------------------------


def test_every_error_class_has_a_declared_tf1_base_type():
    assert set(ALL_ERRORS) == set(TF1_BASE)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_derives_from_scope_error(error):
    assert issubclass(error, errors.ScopeError)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_keeps_tf1s_base_type(error):
    assert issubclass(error, TF1_BASE[error])


BUILTIN_BASES = (
    ValueError,
    TypeError,
    RuntimeError,
    IndexError,
    KeyError,
    LookupError,
    ImportError,
    OSError,
)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_has_exactly_one_builtin_base(error):
    builtins = {base for base in BUILTIN_BASES if issubclass(error, base)}
    assert builtins == {TF1_BASE[error]}


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_is_documented(error):
    assert error.__doc__ and error.__doc__.strip()


def test_scope_error_is_the_catch_all_and_not_itself_a_value_or_runtime_error():
    assert issubclass(errors.ScopeError, Exception)
    assert not issubclass(errors.ScopeError, (ValueError, RuntimeError))
    assert js.errors is errors


def test_ported_code_catching_value_error_catches_a_second_creation():
    def model():
        with js.variable_scope("foo"):
            js.get_variable("v", [1])
        with js.variable_scope("foo"):
            js.get_variable("v", [1])

    with pytest.raises(ValueError):
        js.transform(model).init(0)


# --- VariableExistsError -------------------------------------------------------


def _created_twice():
    with js.variable_scope("enc/layer"):
        js.get_variable("w", [1])  # first creation
    with js.variable_scope("enc/layer"):
        js.get_variable("w", [1])


def test_exists_error_names_the_path_the_first_creation_and_the_fix():
    message = raises_in_init_and_apply(
        _created_twice, errors.VariableExistsError, {"enc": {"layer": {"w": jnp.zeros(1)}}}
    )
    assert "enc/layer/w" in message
    assert line_of(_created_twice, "first creation") in message
    assert "reuse=True" in message and "AUTO_REUSE" in message


def test_exists_error_in_apply_names_where_apply_first_created_it():
    f = js.transform(_created_twice)
    with pytest.raises(errors.VariableExistsError) as info:
        jax.jit(f.apply)({"enc": {"layer": {"w": jnp.zeros(1)}}})
    assert line_of(_created_twice, "first creation") in str(info.value)


# --- VariableMissingError ------------------------------------------------------


def test_missing_error_on_reuse_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("enc/layer", reuse=True):
            js.get_variable("w", [1])

    with pytest.raises(errors.VariableMissingError) as info:
        js.transform(model).init(0)
    message = str(info.value)
    assert "enc/layer/w" in message
    assert "AUTO_REUSE" in message


def test_missing_error_in_apply_names_the_path_and_the_nearest_names_present():
    def model():
        with js.variable_scope("enc/layer"):
            return js.get_variable("w", [1])

    tree = {"enc": {"layer": {"b": jnp.zeros(1)}, "layer_1": {"w": jnp.zeros(1)}}}
    with pytest.raises(errors.VariableMissingError) as info:
        jax.jit(js.transform(model).apply)(tree)
    message = str(info.value)
    assert "enc/layer/w" in message
    assert "enc/layer_1/w" in message  # the nearest name present
    assert "Fix" in message and "init" in message


def test_missing_error_when_a_variable_is_in_the_other_tree_names_the_argument_order():
    def model():
        return js.get_variable("bn/mean", [2], trainable=False)

    f = js.transform_with_state(model)
    params, state = f.init(0)
    with pytest.raises(errors.VariableMissingError) as info:
        f.apply(state, params)  # swapped
    message = str(info.value)
    assert "bn/mean" in message and "apply(params, state" in message


# --- ShapeMismatchError / DtypeMismatchError ----------------------------------


def test_shape_error_shows_both_shapes_in_tf1s_words():
    def model():
        with js.variable_scope("a"):
            return js.get_variable("v", [2])

    with pytest.raises(errors.ShapeMismatchError) as info:
        jax.jit(js.transform(model).apply)({"a": {"v": jnp.zeros(1)}})
    message = str(info.value)
    assert "Trying to share variable a/v, but specified shape (2,) and found shape (1,)" in message
    assert "Fix" in message


def test_shape_error_on_reuse_within_a_call_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("a"):
            js.get_variable("v", [1])
        with js.variable_scope("a", reuse=True):
            js.get_variable("v", [2])

    message = raises_in_init_and_apply(model, errors.ShapeMismatchError, {"a": {"v": jnp.zeros(1)}})
    assert "a/v" in message and "(2,)" in message and "(1,)" in message
    assert "omit shape" in message


def test_dtype_error_shows_both_dtypes_the_path_and_the_fix():
    def model():
        with js.variable_scope("a"):
            return js.get_variable("v", [1], jnp.bfloat16)

    with pytest.raises(errors.DtypeMismatchError) as info:
        jax.jit(js.transform(model).apply)({"a": {"v": jnp.zeros(1, jnp.float32)}})
    message = str(info.value)
    assert "a/v" in message and "bfloat16" in message and "float32" in message
    assert "Fix" in message


# --- InvalidNameError / NameConflictError --------------------------------------


def _invalid_name():
    with js.variable_scope("enc"):
        js.get_variable("w:0", [1])


def test_invalid_name_error_names_the_name_and_the_fix():
    message = raises_in_init_and_apply(_invalid_name, errors.InvalidNameError, {})
    assert "w:0" in message
    assert "Fix" in message


def test_invalid_name_error_names_the_full_path_in_its_scope():
    message = raises_in_init_and_apply(_invalid_name, errors.InvalidNameError, {})
    assert "enc/w:0" in message


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a/"])
def test_invalid_name_error_for_empty_components_names_the_name(name):
    def model():
        js.get_variable(name, [1])

    with pytest.raises(errors.InvalidNameError) as info:
        js.transform(model).init(0)
    assert repr(name) in str(info.value)


def test_name_conflict_error_names_both_paths_and_the_fix():
    def model():
        with js.variable_scope("a"):
            js.get_variable("x", [1])
            js.get_variable("x/y", [1])

    message = raises_in_init_and_apply(model, errors.NameConflictError, {"a": {"x": jnp.zeros(1)}})
    assert "a/x/y" in message and "a/x " in message
    assert "rename" in message


def test_name_conflict_error_for_a_leaf_under_an_existing_variable_names_both():
    def model():
        js.get_variable("a/x/y", [1])
        js.get_variable("a/x", [1])

    with pytest.raises(errors.NameConflictError) as info:
        js.transform(model).init(0)
    message = str(info.value)
    assert "a/x/y" in message and "a/x" in message and "rename" in message


# --- InitializerError -----------------------------------------------------------


def test_initializer_error_without_a_shape_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("enc"):
            js.get_variable("w")

    message = raises_in_init_and_apply(model, errors.InitializerError, {"enc": {}})
    assert "enc/w" in message and "shape=" in message


def test_initializer_error_for_a_disagreeing_value_shows_both_shapes():
    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [3], initializer=[1.0, 2.0])

    message = raises_in_init_and_apply(model, errors.InitializerError, {"enc": {}})
    assert "enc/w" in message and "(2,)" in message and "(3,)" in message


def test_initializer_error_for_a_wrong_initializer_output_names_the_convention():
    def model():
        return js.get_variable("enc/w", [3], initializer=lambda key, shape, dtype: jnp.zeros(2))

    with pytest.raises(errors.InitializerError) as info:
        js.transform(model).init(0)
    message = str(info.value)
    assert "enc/w" in message and "init(key, shape, dtype)" in message


# --- InvalidParamsError ---------------------------------------------------------


def test_invalid_params_error_for_an_array_as_params_names_the_fix():
    f = js.transform(lambda x: x @ js.get_variable("w", [3, 2]))
    with pytest.raises(errors.InvalidParamsError) as info:
        jax.jit(f.apply)(jnp.ones((3, 2)), jnp.ones((1, 3)))
    message = str(info.value)
    assert "params" in message and "f.apply(params, *args)" in message


def test_invalid_params_error_for_a_subtree_where_a_variable_belongs_names_the_path():
    def model():
        return js.get_variable("enc/w", [1])

    tree = {"enc": {"w": {"kernel": jnp.zeros(1)}}}
    with pytest.raises(errors.InvalidParamsError) as info:
        jax.jit(js.transform(model).apply)(tree)
    message = str(info.value)
    assert "enc/w" in message and "sub-tree" in message and "Fix" in message


def test_invalid_params_error_for_a_leaf_where_a_subtree_belongs_names_the_path():
    def model():
        return js.get_variable("enc/w", [1])

    with pytest.raises(errors.InvalidParamsError) as info:
        jax.jit(js.transform(model).apply)({"enc": jnp.zeros(1)})
    message = str(info.value)
    assert "enc/w" in message and "Fix" in message


def test_invalid_params_error_for_a_non_array_leaf_names_the_path():
    def model():
        return js.get_variable("enc/w", [1])

    with pytest.raises(errors.InvalidParamsError) as info:
        js.transform(model).apply({"enc": {"w": "weights"}})
    message = str(info.value)
    assert "enc/w" in message and "str" in message


# --- ScopeArgumentError ----------------------------------------------------------


@pytest.mark.parametrize("reuse", [True, js.AUTO_REUSE], ids=["True", "AUTO_REUSE"])
def test_scope_argument_error_for_default_name_with_reuse_names_the_fix(reuse):
    def model():
        with js.variable_scope(None, default_name="layer", reuse=reuse):
            pass

    message = raises_in_init_and_apply(model, errors.ScopeArgumentError, {})
    assert "layer" in message and "Fix" in message


# --- ArgumentTypeError -----------------------------------------------------------


def test_argument_type_error_without_a_name_or_default_name_names_the_fix():
    def model():
        with js.variable_scope():
            pass

    message = raises_in_init_and_apply(model, errors.ArgumentTypeError, {})
    assert "default_name" in message and "Fix" in message


def test_argument_type_error_for_a_non_name_scope_is_a_type_error_only():
    def model():
        with js.variable_scope(3):
            pass

    with pytest.raises(errors.ArgumentTypeError) as info:
        js.transform(model).init(0)
    assert isinstance(info.value, TypeError) and not isinstance(info.value, ValueError)
    assert "name_or_scope" in str(info.value) and "int" in str(info.value)


# --- ScopeNestingError -----------------------------------------------------------


def test_nesting_error_for_an_out_of_order_exit_names_the_scope_and_the_fix():
    def model():
        outer, inner = js.variable_scope("enc"), js.variable_scope("inner")
        outer.__enter__()
        inner.__enter__()
        outer.__exit__(None, None, None)

    message = raises_in_init_and_apply(model, errors.ScopeNestingError, {})
    assert "'enc'" in message and "`with`" in message


def _leaves_scopes_open():
    js.variable_scope("enc").__enter__()
    js.variable_scope("inner").__enter__()


def test_nesting_error_for_scopes_left_open_at_the_end_of_fn_names_the_fix():
    message = raises_in_init_and_apply(_leaves_scopes_open, errors.ScopeNestingError, {})
    assert "never exited" in message and "`with`" in message


def test_nesting_error_for_scopes_left_open_names_the_open_scopes():
    message = raises_in_init_and_apply(_leaves_scopes_open, errors.ScopeNestingError, {})
    assert "enc/inner" in message


# --- NoTransformError ------------------------------------------------------------

OUTSIDE_A_TRANSFORM = [
    pytest.param(lambda: js.get_variable("enc/w", [1]), "js.get_variable", id="get_variable"),
    pytest.param(lambda: js.variable_scope("enc").__enter__(), "js.variable_scope", id="scope"),
    pytest.param(js.get_variable_scope, "js.get_variable_scope", id="get_variable_scope"),
    pytest.param(lambda: js.assign("bn/count", 1), "js.assign", id="assign"),
    pytest.param(js.next_rng_key, "js.next_rng_key", id="next_rng_key"),
]


@pytest.mark.parametrize("call, what", OUTSIDE_A_TRANSFORM)
def test_calls_outside_a_transform_raise_no_transform_error(call, what):
    with pytest.raises(errors.NoTransformError) as info:
        call()
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert what in message
    assert "js.transform" in message and "Fix" in message


@pytest.mark.parametrize(
    "call, name",
    [
        pytest.param(lambda: js.get_variable("enc/w", [1]), "enc/w", id="get_variable"),
        pytest.param(lambda: js.assign("bn/count", 1), "bn/count", id="assign"),
    ],
)
def test_variable_calls_outside_a_transform_name_the_variable(call, name):
    with pytest.raises(errors.NoTransformError) as info:
        call()
    assert name in str(info.value)


# --- StaleScopeError ----------------------------------------------------------------


def _captured_scope():
    captured = []

    def model():
        with js.variable_scope("enc") as scope:
            js.get_variable("w", [1])
        captured.append(scope)

    js.transform(model).init(0)
    return captured[0]


def test_a_scope_used_after_its_call_ended_raises_stale_scope_error():
    stale = _captured_scope()
    with pytest.raises(errors.StaleScopeError) as info:
        stale.get_variable("w", [1])
    message = str(info.value)
    assert "'enc'" in message and "Fix" in message and "inside the model function" in message


def test_a_scope_reentered_in_a_later_call_raises_stale_scope_error():
    stale = _captured_scope()

    def model():
        with js.variable_scope(stale, reuse=True):
            return js.get_variable("w", [1])

    message = raises_in_init_and_apply(model, errors.StaleScopeError, {"enc": {"w": jnp.ones(1)}})
    assert "'enc'" in message


def test_a_scopes_get_variable_in_a_later_call_raises_stale_scope_error():
    stale = _captured_scope()

    def model():
        return stale.get_variable("w", [1])

    message = raises_in_init_and_apply(model, errors.StaleScopeError, {"enc": {"w": jnp.ones(1)}})
    assert "'enc'" in message


# --- StateInStatelessTransformError / AssignError ---------------------------------


def test_state_in_stateless_transform_error_names_the_path_and_transform_with_state():
    def model():
        with js.variable_scope("bn"):
            js.get_variable("moving_mean", [2], trainable=False)

    message = raises_in_init_and_apply(
        model, errors.StateInStatelessTransformError, {"bn": {"moving_mean": jnp.zeros(2)}}
    )
    assert "bn/moving_mean" in message and "js.transform_with_state" in message


def _stateful(body):
    f = js.transform_with_state(body)
    with pytest.raises(errors.AssignError) as info:
        f.init(0)
    return str(info.value)


def test_assign_error_for_a_trainable_variable_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("bn"):
            js.get_variable("scale", [2])
            js.assign("scale", jnp.ones(2))

    message = _stateful(model)
    assert "bn/scale" in message and "trainable=False" in message


def test_assign_error_for_a_variable_not_obtained_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("bn"):
            js.assign("count", 1)

    message = _stateful(model)
    assert "bn/count" in message and "get_variable" in message


def test_assign_error_for_a_wrong_shape_shows_both_shapes():
    def model():
        with js.variable_scope("bn"):
            js.get_variable("mean", [2], trainable=False)
            js.assign("mean", jnp.ones(3))

    message = _stateful(model)
    assert "bn/mean" in message and "(2,)" in message and "(3,)" in message


# --- MissingRNGError -----------------------------------------------------------------


def test_missing_rng_error_in_init_names_the_variable_and_the_fix():
    def model():
        return js.get_variable("enc/w", [2])

    with pytest.raises(errors.MissingRNGError) as info:
        js.transform(model).init(None)
    message = str(info.value)
    assert "enc/w" in message and "jax.random.key" in message


def test_missing_rng_error_from_next_rng_key_names_the_scope_and_the_fix():
    def model():
        with js.variable_scope("dropout"):
            return js.next_rng_key()

    with pytest.raises(errors.MissingRNGError) as info:
        jax.jit(js.transform(model).apply)({})
    message = str(info.value)
    assert "'dropout'" in message and "rng=jax.random.key" in message


# --- ShardingError / UnusedVariableError ---------------------------------------


def test_sharding_error_for_too_many_entries_names_the_path_and_the_fix():
    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [4], sharding=("data", "model"))

    message = raises_in_init_and_apply(model, errors.ShardingError, {"enc": {"w": jnp.zeros(4)}})
    assert "enc/w" in message and "Fix" in message


def test_unused_variable_error_names_the_unused_paths_and_the_fix():
    def model():
        with js.variable_scope("enc"):
            return js.get_variable("w", [1])

    f = js.transform(model, check_unused=True)
    tree = {"enc": {"w": jnp.zeros(1)}, "encoder": {"w": jnp.zeros(1)}}
    with pytest.raises(errors.UnusedVariableError) as info:
        jax.jit(f.apply)(tree)
    message = str(info.value)
    assert "encoder/w" in message and "enc/w" not in message.replace("encoder/w", "")
    assert "Fix" in message


# --- RawTransformError -----------------------------------------------------------------


def _in_raw_scan(x):
    def body(carry, xi):
        return carry + js.get_variable("enc/w", [2]) @ xi, None

    return jax.lax.scan(body, 0.0, x)[0]


def _in_raw_vmap(x):
    return jax.vmap(lambda xi: js.get_variable("enc/w", [2]) @ xi)(x)


def _in_raw_jit(x):
    return jax.jit(lambda x: x @ js.get_variable("enc/w", [2]))(x)


def _in_raw_checkpoint(x):
    return jax.checkpoint(lambda x: x @ js.get_variable("enc/w", [2]))(x)


def _in_raw_cond(x):
    return jax.lax.cond(
        True, lambda x: x @ js.get_variable("enc/w", [2]), lambda x: x @ jnp.ones(2), x
    )


def _in_raw_while_loop(x):
    return jax.lax.while_loop(
        lambda c: c < 10.0, lambda c: c + jnp.sum(js.get_variable("enc/w", [2])) ** 2 + 1.0, 0.0
    )


RAW_TRANSFORMS = [
    pytest.param(_in_raw_scan, id="scan"),
    pytest.param(_in_raw_vmap, id="vmap"),
    pytest.param(_in_raw_jit, id="jit"),
    pytest.param(_in_raw_checkpoint, id="checkpoint"),
    pytest.param(_in_raw_cond, id="cond"),
    pytest.param(_in_raw_while_loop, id="while_loop"),
]


@pytest.mark.parametrize("model", RAW_TRANSFORMS)
def test_creating_inside_a_raw_transform_raises_raw_transform_error(model):
    x = jnp.ones((3, 2))
    message = raises_in_init_and_apply(model, errors.RawTransformError, {"enc": {}}, x)
    assert "enc/w" in message
    for lifted in ("js.scan", "js.vmap", "js.remat", "js.layer_stack"):
        assert lifted in message


def test_creating_inside_a_raw_transform_leaves_the_next_call_working():
    x = jnp.ones((3, 2))
    with pytest.raises(errors.RawTransformError):
        js.transform(_in_raw_scan).init(0, x)
    params = js.transform(lambda x: x @ js.get_variable("enc/w", [2])).init(0, x)
    assert params["enc"]["w"].shape == (2,)


def _lookups_inside_raw_transforms(x):
    with js.variable_scope("enc") as enc:
        w = js.get_variable("w", [2])

    def body(carry, xi):
        with js.variable_scope(enc, reuse=True):
            return carry + js.get_variable("w", [2]) @ xi, None

    with js.variable_scope(enc, reuse=js.AUTO_REUSE):
        in_vmap = jax.vmap(lambda xi: js.get_variable("w", [2]) @ xi)(x)
        in_jit = jax.jit(lambda x: x @ js.get_variable("w", [2]))(x)
    in_scan = jax.lax.scan(body, 0.0, x)[0]
    enc.reuse_variables()
    in_checkpoint = jax.checkpoint(lambda x: x @ enc.get_variable("w", [2]))(x)
    return w, in_scan, in_vmap, in_jit, in_checkpoint


def test_lookups_of_created_variables_inside_raw_transforms_keep_working():
    x = jnp.arange(6.0).reshape(3, 2)
    runs = run_both(_lookups_inside_raw_transforms, x)
    assert list(js.flatten(runs.params)) == ["enc/w"]
    w, in_scan, in_vmap, in_jit, in_checkpoint = runs.out_jit
    np.testing.assert_allclose(in_scan, jnp.sum(x @ w), rtol=1e-6)
    for out in (in_vmap, in_jit, in_checkpoint):
        np.testing.assert_allclose(out, x @ w, rtol=1e-6)
