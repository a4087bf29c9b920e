"""js.from_haiku: Haiku params (and state) into jaxscope params trees.

Real Haiku models (an MLP, an attention block of nested modules, a stateful
counter) are converted into the trees of the same models written with
jaxscope, which then give Haiku's outputs under jit. The errors are checked
on plain dicts, which is all ``from_haiku`` needs: they run without Haiku.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope.errors import (
    HaikuArgumentError,
    HaikuConversionError,
    HaikuMismatchError,
    HaikuNameMapError,
)

# Haiku's names for js.nn's layers: Linear's w/b are dense's kernel/bias,
# LayerNorm's scale/offset are gamma/beta, MultiHeadAttention's output
# projection "linear" is "output".
TO_JS_NN = [
    (r"/~/", "/"),
    (r"/multi_head_attention/linear/", "/multi_head_attention/output/"),
    (r"/layer_norm/scale$", "/layer_norm/gamma"),
    (r"/layer_norm/offset$", "/layer_norm/beta"),
    (r"/w$", "/kernel"),
    (r"/b$", "/bias"),
]


@pytest.fixture(scope="module")
def hk():
    return pytest.importorskip("haiku")


def _perturbed(tree):
    """Haiku's initial values with noise, so that zero biases and unit
    scales cannot hide a leaf that went to the wrong place."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    noisy = [
        leaf + 0.1 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, noisy)


def _assert_close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


# --- Real Haiku models ---------------------------------------------------------


def js_mlp(x):
    with js.variable_scope("mlp"):
        h = js.nn.dense(x, 8, jax.nn.relu, name="linear_0")
        return js.nn.dense(h, 4, name="linear_1")


def test_a_haiku_mlp_converts_into_the_jaxscope_mlp_with_haikus_outputs(hk):
    x = jax.random.normal(jax.random.key(0), (3, 5))
    hk_f = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([8, 4])(x)))
    hk_params = _perturbed(hk_f.init(jax.random.key(1), x))
    f = js.transform(js_mlp)

    params = js.from_haiku(hk_params, TO_JS_NN, like=jax.eval_shape(f.init, 0, x))

    _assert_close(jax.jit(f.apply)(params, x), jax.jit(hk_f.apply)(hk_params, x))


def js_block(x):
    with js.variable_scope("block"):
        h = js.nn.layer_norm(x, epsilon=1e-5, name="layer_norm")
        x = x + js.nn.multi_head_attention(
            h, h, num_heads=2, key_size=4, name="multi_head_attention"
        )
        with js.variable_scope("mlp"):
            m = js.nn.dense(x, 16, jax.nn.relu, name="linear_0")
            return x + js.nn.dense(m, 8, name="linear_1")


def _haiku_block(hk):
    class Block(hk.Module):
        def __init__(self):
            super().__init__()
            self.norm = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)
            self.attention = hk.MultiHeadAttention(
                num_heads=2, key_size=4, w_init=hk.initializers.VarianceScaling(1.0)
            )
            self.mlp = hk.nets.MLP([16, 8])

        def __call__(self, x):
            h = self.norm(x)
            x = x + self.attention(h, h, h)
            return x + self.mlp(x)

    return hk.without_apply_rng(hk.transform(lambda x: Block()(x)))


def test_an_attention_block_of_nested_haiku_modules_gives_haikus_outputs(hk):
    x = jax.random.normal(jax.random.key(0), (2, 5, 8))
    hk_f = _haiku_block(hk)
    hk_params = _perturbed(hk_f.init(jax.random.key(1), x))
    assert "block/~/mlp/~/linear_0" in hk_params  # modules two levels deep
    f = js.transform(js_block)

    params, report = js.from_haiku(
        hk_params, TO_JS_NN, like=jax.eval_shape(f.init, 0, x), return_report=True
    )

    assert report.ok and len(report.loaded) == len(js.flatten(params)) == 14
    assert report.renamed["block/~/multi_head_attention/linear/w"] == (
        "block/multi_head_attention/output/kernel"
    )
    _assert_close(jax.jit(f.apply)(params, x), jax.jit(hk_f.apply)(hk_params, x))


def js_counter(x):
    count = js.get_variable("count", [], jnp.int32, trainable=False)
    js.assign("count", count + 1)
    with js.variable_scope("linear"):
        w = js.get_variable("w", [x.shape[-1], 2])
        b = js.get_variable("b", [2])
    return (x @ w + b) * count


def test_params_and_state_convert_together_with_the_default_names(hk):
    def hk_counter(x):
        count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        hk.set_state("count", count + 1)
        return hk.Linear(2)(x) * count

    x = jnp.arange(6.0).reshape(2, 3)
    hk_f = hk.without_apply_rng(hk.transform_with_state(hk_counter))
    hk_params, hk_state = hk_f.init(jax.random.key(1), x)
    hk_params = _perturbed(hk_params)
    _, hk_state = hk_f.apply(hk_params, hk_state, x)  # count 1
    assert "~" in hk_state  # hk.get_state outside a module
    f = js.transform_with_state(js_counter)

    params, state = js.from_haiku(
        (hk_params, hk_state), like=jax.eval_shape(f.init, 0, x)
    )  # no name_map: the default drops the "~"s

    assert js.flatten(state).keys() == {"count"} and int(state["count"]) == 1
    out, new_state = jax.jit(f.apply)(params, state, x)
    hk_out, hk_new_state = jax.jit(hk_f.apply)(hk_params, hk_state, x)
    _assert_close(out, hk_out)
    assert int(new_state["count"]) == int(hk_new_state["~"]["count"]) == 2


# --- The default name map, on plain dicts --------------------------------------

HK_MLP = {
    "mlp/~/linear_0": {"w": jnp.ones((3, 8)), "b": jnp.zeros(8)},
    "mlp/~/linear_1": {"w": jnp.ones((8, 2)), "b": jnp.zeros(2)},
}


def js_mlp_wb(x):
    """An MLP written with Haiku's names, as a port by hand would be."""
    for i, units in enumerate([8, 2]):
        with js.variable_scope(f"mlp/linear_{i}"):
            w = js.get_variable("w", [x.shape[-1], units])
            x = x @ w + js.get_variable("b", [units])
    return x


def _like(fn=js_mlp_wb):
    return jax.eval_shape(js.transform(fn).init, 0, jnp.ones((1, 3)))


def test_the_default_name_map_drops_every_tilde_component():
    hk_params = {"a/~/b/~/~/c": {"w": jnp.ones(1)}, "~": {"count": jnp.zeros((), jnp.int32)}}
    assert sorted(js.flatten(js.from_haiku(hk_params))) == ["a/b/c/w", "count"]


def test_without_like_every_leaf_converts_by_name_and_keeps_its_dtype():
    hk_params = {"lin": {"w": np.ones((2, 2), np.float64), "n": np.int64(3)}}
    params, report = js.from_haiku(hk_params, return_report=True)
    assert params["lin"]["w"].dtype == jnp.float32 and params["lin"]["n"].dtype == jnp.int32
    assert report.cast == {"lin/w": ("float64", "float32"), "lin/n": ("int64", "int32")}
    assert js.from_haiku(hk_params, dtype=jnp.bfloat16)["lin"]["w"].dtype == jnp.bfloat16


def test_a_floating_template_dtype_is_applied_and_reported():
    like = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, jnp.bfloat16), _like())
    params, report = js.from_haiku(HK_MLP, like=like, return_report=True)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    assert report.cast["mlp/linear_0/w"] == ("float32", "bfloat16")


def test_skip_drops_haiku_names_before_the_rules():
    hk_state = {"bn/~/mean_ema": {"average": jnp.ones(2), "hidden": jnp.ones(2)}}
    params, report = js.from_haiku(hk_state, skip=[r"/hidden$"], return_report=True)
    assert js.flatten(params).keys() == {"bn/mean_ema/average"}
    assert report.skipped == ("bn/~/mean_ema/hidden",)


# --- Errors --------------------------------------------------------------------


def _raises(error, *args, **kwargs):
    with pytest.raises(error) as info:
        js.from_haiku(*args, **kwargs)
    assert isinstance(info.value, HaikuConversionError) and isinstance(info.value, ValueError)
    assert "Fix:" in str(info.value)
    return str(info.value)


def test_a_wrong_shape_names_both_sides_and_raises_even_when_not_strict():
    transposed = {**HK_MLP, "mlp/~/linear_1": {"w": jnp.ones((2, 8)), "b": jnp.zeros(2)}}
    message = _raises(HaikuMismatchError, transposed, like=_like(), strict=False)
    assert "mlp/linear_1/w <- mlp/~/linear_1/w: Haiku shape (2, 8), model shape (8, 2)" in message
    assert "Fix: build the model with the shapes" in message


def test_a_wrong_dtype_kind_names_both_sides():
    ints = {**HK_MLP, "mlp/~/linear_0": {"w": jnp.ones((3, 8), jnp.int32), "b": jnp.zeros(8)}}
    message = _raises(HaikuMismatchError, ints, like=_like())
    assert "mlp/linear_0/w <- mlp/~/linear_0/w: Haiku dtype int32, model dtype float32" in message


def test_unused_haiku_names_are_listed_with_a_rule_to_fix_them():
    extra = {**HK_MLP, "mlp/~/linear_2": {"w": jnp.ones((2, 2))}}
    with pytest.raises(HaikuMismatchError) as info:
        js.from_haiku(extra, like=_like())
    message = str(info.value)
    assert "Haiku parameters the model does not use (Haiku name [-> renamed]):" in message
    assert "    mlp/~/linear_2/w -> mlp/linear_2/w" in message
    assert "drop entries with (pattern, None); or pass strict=False" in message
    assert info.value.report.unused == ("mlp/~/linear_2/w",)


def test_strict_false_converts_what_matches_and_reports_the_rest():
    extra = {**HK_MLP, "mlp/~/linear_2": {"w": jnp.ones((2, 2))}}
    params, report = js.from_haiku(extra, like=_like(), strict=False, return_report=True)
    assert report.unused == ("mlp/~/linear_2/w",) and not report.ok
    assert js.flatten(params).keys() == js.flatten(_like()).keys()


def test_missing_model_paths_name_the_nearest_haiku_names_and_suggest_a_rule():
    def renamed_port(x):
        with js.variable_scope("net"):
            return js_mlp_wb(x)

    message = _raises(HaikuMismatchError, HK_MLP, like=_like(renamed_port))
    assert "Model paths with no Haiku parameter" in message
    assert "net/mlp/linear_0/w <- mlp/~/linear_0/w" in message
    assert "append the rule ('^', 'net/')" in message
    assert "name_map=[*js.haiku_interop.DEFAULT_NAME_MAP, <your rules>]" in message


def test_an_explicit_name_map_keeps_the_tildes_and_the_error_says_how_to_drop_them():
    message = _raises(HaikuMismatchError, HK_MLP, [(r"^mlp/", "mlp/")], like=_like())
    assert "mlp/linear_0/w <- mlp/~/linear_0/w" in message
    assert "begin the rules with ('(?:^|(?<=/))~/', ''), or *js.haiku_interop" in message
    rules = [*js.haiku_interop.DEFAULT_NAME_MAP, (r"^mlp/", "mlp/")]
    assert js.from_haiku(HK_MLP, rules, like=_like()).keys() == {"mlp"}


@pytest.mark.parametrize(
    "name_map, words",
    [
        ([("mlp/~/(linear", "x")], ["name_map rule 0", "'mlp/~/(linear' is not a valid regex"]),
        ([(r"^(mlp)/", r"\2/")], ["rule 0", "invalid group reference 2", "pattern's groups"]),
        ("^mlp/", ["name_map must be a list of pairs or a dict", "str"]),
        ([(r"^mlp/", 3)], ["the replacement 3 (int) is not a string or None"]),
    ],
)
def test_a_malformed_name_map_raises_name_map_error_naming_the_rule(name_map, words):
    message = _raises(HaikuNameMapError, HK_MLP, name_map, like=_like())
    for word in [*words, "Fix:"]:
        assert word in message


def test_a_bad_skip_regex_or_a_string_skip_raises_name_map_error():
    assert "skip: 'hidden(' is not a valid regex" in _raises(
        HaikuNameMapError, HK_MLP, skip=["hidden("]
    )
    assert "skip=('hidden',)" in _raises(HaikuNameMapError, HK_MLP, skip="hidden")


def test_two_haiku_names_renamed_to_one_path_raise_naming_both():
    message = _raises(HaikuNameMapError, HK_MLP, [(r"linear_\d", "linear")])
    assert "Haiku parameters mlp/~/linear_0/w and mlp/~/linear_1/w are both renamed" in message
    assert "Fix: change the name_map rules" in message


def test_a_renamed_name_that_is_no_variable_name_raises():
    message = _raises(HaikuNameMapError, HK_MLP, [(r"/w$", "/")])
    assert "Haiku parameter mlp/~/linear_0/w is renamed to 'mlp/~/linear_0/'" in message


@pytest.mark.parametrize(
    "hk_params, words",
    [
        ("params", ["hk_params must be the dict Haiku's init returned", "got str"]),
        ({"mlp": {"w": "0.5"}}, ["Haiku parameter mlp/w is a str, not an array", "^mlp/w$"]),
        ({"vocab": {"v": np.array(["a"])}}, ["vocab/v holds <U1 values", "skip=('^vocab/v$',)"]),
        ({"rng": {"key": jax.random.key(0)}}, ["rng/key holds key<fry> values, not numbers"]),
        ((HK_MLP, HK_MLP), ["mlp/~/linear_0/w is in two of the dicts given"]),
        ({1: {"w": jnp.ones(1)}}, ["cannot be read as names", "the key 1 (int)"]),
    ],
)
def test_malformed_haiku_params_raise_argument_error(hk_params, words):
    message = _raises(HaikuArgumentError, hk_params)
    for word in [*words, "Fix:"]:
        assert word in message


def test_malformed_like_and_dtype_raise_argument_error():
    assert "like must be a params tree" in _raises(HaikuArgumentError, HK_MLP, like=3)
    assert "dtype must be a floating dtype" in _raises(HaikuArgumentError, HK_MLP, dtype="x")


def test_a_skipped_leaf_need_not_be_an_array():
    hk_params = {**HK_MLP, "meta": {"note": "trained on v2"}}
    assert js.from_haiku(hk_params, skip=[r"^meta/"], like=_like()).keys() == {"mlp"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"like": {"mlp": {"linear_0": {"w": jnp.ones((8, 3)), "b": jnp.zeros(8)}}}},
        {"name_map": [("(", "")]},
        {"like": {"mlp": {"linear_0": {"w": jnp.ones((3, 8)), "b": jnp.zeros(8)}}}},
    ],
    ids=["wrong_shape", "bad_regex", "unused_names"],
)
def test_a_failed_conversion_leaves_the_callers_trees_untouched(kwargs):
    hk_params = copy.deepcopy(HK_MLP)
    before = [js.flatten(tree) for tree in (hk_params, kwargs.get("like", {}))]
    with pytest.raises(HaikuConversionError):
        js.from_haiku(hk_params, **kwargs)
    for tree, leaves in zip((hk_params, kwargs.get("like", {})), before, strict=True):
        after = js.flatten(tree)
        assert after.keys() == leaves.keys()
        assert all(after[name] is leaf for name, leaf in leaves.items())  # the very same arrays
    jax.tree.map(np.testing.assert_array_equal, hk_params, HK_MLP)


def test_from_haiku_needs_neither_haiku_nor_tensorflow():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["haiku"] = sys.modules["tensorflow"] = None  # `import` of either fails
        import jax.numpy as jnp
        import jaxscope as js
        tree = js.from_haiku({"mlp/~/linear_0": {"w": jnp.ones((3, 2))}}, like={
            "mlp": {"linear_0": {"w": jnp.zeros((3, 2))}}})
        print(float(tree["mlp"]["linear_0"]["w"].sum()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "6.0"
