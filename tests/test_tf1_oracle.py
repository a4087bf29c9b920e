"""Real TF1 as the oracle for variable-scope semantics.

Each program is written once against a small API adapter and run twice: in
TF1 (``tensorflow.compat.v1``, graph mode in a fresh ``tf.Graph``) and in
jaxscope (through init, eager apply and jitted apply). The variable names (TF's
``v.name`` without ``:0`` against the flattened params paths), the scope names
and reuse flags seen while the program runs, the custom-getter call order and
initial values must agree.

Not compared, because DESIGN.md makes jaxscope differ from TF1 on purpose:
- op-name scopes are not uniquified (TF1 names a re-opened ``boo`` scope's ops
  ``boo_1/...`` and its ``original_name_scope`` ``boo_1/``): only programs
  that open every op-name scope once compare ``original_name_scope``;
- a name that is both a variable and a sub-tree (``a/x`` and ``a/x/y``) is an
  error in jaxscope, so no program here creates one;
- ``apply`` may find a ``reuse=True`` variable in the tree it is given, where
  TF1 (and jaxscope's ``init``) raise, so reuse errors are checked in init;
- the ``default_name`` count table is per call, where TF1's is per graph;
  each TF1 run uses a fresh graph, so the programs see the same tables;
- ``VariableScope.get_variable`` takes no ``var_store`` argument, and custom
  getters receive jaxscope's keyword set, not TF1's (``collections``,
  ``caching_device``, ...), so only getter call order and names are compared.
"""

import threading

import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both

tf = pytest.importorskip("tensorflow")
tf1 = tf.compat.v1


class TF1:
    """The TF1 side of the adapter."""

    AUTO_REUSE = tf1.AUTO_REUSE
    float16 = tf.float16
    float32 = tf.float32
    variable_scope = staticmethod(tf1.variable_scope)
    get_variable_scope = staticmethod(tf1.get_variable_scope)
    name_scope = staticmethod(tf1.name_scope)
    constant = staticmethod(tf1.constant_initializer)

    @staticmethod
    def get_variable(name, shape=(1,), **kwargs):
        return tf1.get_variable(name, shape, **kwargs)

    @staticmethod
    def scope_get_variable(scope, name, shape=(1,)):
        from tensorflow.python.ops import variable_scope as tf_vs

        return scope.get_variable(tf_vs._get_default_variable_store(), name, shape)


class JS:
    """The jaxscope side of the adapter."""

    AUTO_REUSE = js.AUTO_REUSE
    float16 = jnp.float16
    float32 = jnp.float32
    variable_scope = staticmethod(js.variable_scope)
    get_variable_scope = staticmethod(js.get_variable_scope)
    name_scope = staticmethod(js.name_scope)
    constant = staticmethod(js.initializers.constant)

    @staticmethod
    def get_variable(name, shape=(1,), **kwargs):
        return js.get_variable(name, shape, **kwargs)

    @staticmethod
    def scope_get_variable(scope, name, shape=(1,)):
        return scope.get_variable(name, shape)


def note(api, seen, scope=None):
    """Records ``(name, reuse)`` of a scope (the current one by default)."""
    scope = api.get_variable_scope() if scope is None else scope
    reuse = "AUTO_REUSE" if scope.reuse is api.AUTO_REUSE else bool(scope.reuse)
    seen.append((scope.name, reuse))


def run_tf1(program):
    """``(variables, seen)``: ``{name: (value, dtype name)}`` and observations."""
    seen = []
    with tf.Graph().as_default() as graph:
        program(TF1, seen)
        variables = tf1.global_variables()
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            values = session.run(variables)
    return {
        v.name.removesuffix(":0"): (value, v.dtype.base_dtype.name)
        for v, value in zip(variables, values, strict=True)
    }, seen


def run_jaxscope(program):
    """Like :func:`run_tf1`, through init, eager apply and jitted apply; the
    three runs must make the same observations."""
    seen = []
    runs = run_both(lambda: program(JS, seen))
    n = len(seen) // 3
    assert len(seen) == 3 * n and seen == seen[:n] * 3, seen
    flat = js.flatten(runs.params)
    return {name: (np.asarray(v), str(v.dtype)) for name, v in flat.items()}, seen[:n]


def assert_same(program):
    """Runs ``program`` in TF1 and jaxscope; asserts that the variable names,
    dtypes, initial values and observations agree; returns TF1's
    ``(sorted variable names, observations)``."""
    tf_vars, tf_seen = run_tf1(program)
    js_vars, js_seen = run_jaxscope(program)
    assert sorted(js_vars) == sorted(tf_vars)
    assert js_seen == tf_seen
    for name, (tf_value, tf_dtype) in tf_vars.items():
        js_value, js_dtype = js_vars[name]
        assert js_dtype == tf_dtype, name
        assert js_value.shape == tf_value.shape, name
    return sorted(tf_vars), tf_seen


def assert_same_values(program, names):
    """The initial values of the named variables agree between TF1 and
    jaxscope (only deterministic initializers can be compared)."""
    tf_vars, _ = run_tf1(program)
    js_vars, _ = run_jaxscope(program)
    for name in names:
        np.testing.assert_allclose(
            js_vars[name][0].astype(np.float32), tf_vars[name][0].astype(np.float32), err_msg=name
        )


def tf1_error(program):
    """The exception ``program`` raises in TF1, run in a throwaway thread: TF's
    default-graph stack is per thread, and a misnested program leaves its
    graph on it."""
    errors = []

    def target():
        try:
            with tf.Graph().as_default():
                program(TF1, [])
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return errors[0] if errors else None


def raise_same(program, base):
    """TF1 raises ``base``; jaxscope raises a ``ScopeError`` that is a ``base``."""
    assert isinstance(tf1_error(program), base)
    with pytest.raises(js.errors.ScopeError) as info:
        js.transform(lambda: program(JS, [])).init(0)
    assert isinstance(info.value, base)


def open_default(api, seen, name="layer", create=True):
    """Opens a ``default_name`` scope, records its name and creates ``w`` in it."""
    with api.variable_scope(None, default_name=name) as scope:
        seen.append(scope.name)
        if create:
            api.get_variable("w")


# --- default_name numbering ---------------------------------------------------------


def test_default_name_siblings_and_nesting():
    def program(api, seen):
        for _ in range(3):
            open_default(api, seen)
        with api.variable_scope(None, default_name="block") as block:
            seen.append(block.name)
            open_default(api, seen)
            open_default(api, seen)
            with api.variable_scope(None, default_name="block") as inner:
                seen.append(inner.name)
                open_default(api, seen)
        with api.variable_scope(None, default_name="block") as block:
            seen.append(block.name)
            open_default(api, seen)

    names, seen = assert_same(program)
    assert seen == [
        "layer",
        "layer_1",
        "layer_2",
        "block",
        "block/layer",
        "block/layer_1",
        "block/block",
        "block/block/layer",
        "block_1",
        "block_1/layer",
    ]


def test_default_name_against_scopes_opened_by_name():
    def program(api, seen):
        with api.variable_scope("layer_1"):
            pass
        with api.variable_scope("layer_3"):
            pass
        for _ in range(3):
            open_default(api, seen)
        with api.variable_scope("block"):
            pass
        open_default(api, seen, "block")
        with api.variable_scope("layer/sub"):  # counts "layer/sub", not "layer"
            pass
        open_default(api, seen, "sub")
        open_default(api, seen, "x/y")  # a default name may hold "/"
        open_default(api, seen, "x/y")

    _, seen = assert_same(program)
    assert seen == ["layer", "layer_2", "layer_4", "block_1", "sub", "x/y", "x/y_1"]


def test_default_names_inside_reopened_named_scopes():
    def program(api, seen):
        with api.variable_scope("outer", reuse=api.AUTO_REUSE):
            open_default(api, seen)
            open_default(api, seen)
            with api.variable_scope("mid"):
                open_default(api, seen)
        with api.variable_scope("outer", reuse=api.AUTO_REUSE):
            open_default(api, seen)  # counts below "outer" were reset on exit
            with api.variable_scope("mid"):
                open_default(api, seen)
        open_default(api, seen, "outer")

    _, seen = assert_same(program)
    assert seen == [
        "outer/layer",
        "outer/layer_1",
        "outer/mid/layer",
        "outer/layer",
        "outer/mid/layer",
        "outer_1",
    ]


def test_exiting_a_default_named_scope_resets_the_counts_below_it():
    def program(api, seen):
        with api.variable_scope("layer/sub"):
            pass
        open_default(api, seen)  # "layer"; its exit resets "layer/sub"
        with api.variable_scope("layer", reuse=api.AUTO_REUSE):
            open_default(api, seen, "sub")

    _, seen = assert_same(program)
    assert seen == ["layer", "layer/sub"]


def test_default_names_inside_reentered_captured_scopes():
    def program(api, seen):
        with api.variable_scope("a", reuse=api.AUTO_REUSE) as a:
            open_default(api, seen)
            with api.variable_scope(a):
                open_default(api, seen)
                open_default(api, seen)
            open_default(api, seen)  # the table is restored, not reset
        for _ in range(2):
            with api.variable_scope(a):
                open_default(api, seen)
        with api.variable_scope("b"):
            with api.variable_scope(a):
                with api.variable_scope(None, default_name="a") as nested:
                    seen.append(nested.name)
        open_default(api, seen, "a")

    _, seen = assert_same(program)
    assert seen == [
        "a/layer",
        "a/layer_1",
        "a/layer_2",
        "a/layer_1",
        "a/layer",
        "a/layer",
        "a/a",
        "a_1",
    ]


def test_reentering_a_captured_scope_counts_its_name_again_after_a_reset():
    def program(api, seen):
        with api.variable_scope("outer"):
            with api.variable_scope("a") as a:
                pass
        # Exiting "outer" reset the count of "outer/a"; entering a counts it
        # again, and the table restored on exit keeps that count.
        with api.variable_scope(a):
            pass
        with api.variable_scope("outer"):
            open_default(api, seen, "a")

    _, seen = assert_same(program)
    assert seen == ["outer/a_1"]


def test_default_names_after_exiting_scopes():
    def program(api, seen):
        with api.variable_scope("x"):
            open_default(api, seen)
            with api.variable_scope(None, default_name="x") as inner:
                seen.append(inner.name)
        open_default(api, seen)
        open_default(api, seen, "x")
        with api.variable_scope(api.get_variable_scope(), reuse=api.AUTO_REUSE):
            open_default(api, seen)
        open_default(api, seen, create=False)  # the root re-entry restored the table

    _, seen = assert_same(program)
    assert seen == ["x/layer", "x/x", "layer", "x_1", "layer_1", "layer_1"]


def test_default_name_scopes_inherit_reuse():
    def program(api, seen):
        with api.variable_scope("r"):
            with api.variable_scope(None, default_name="layer"):
                api.get_variable("w")
        with api.variable_scope("r", reuse=True):
            with api.variable_scope(None, default_name="other") as s:
                note(api, seen, s)
        with api.variable_scope("a", reuse=api.AUTO_REUSE):
            with api.variable_scope(None, default_name="layer") as s:
                note(api, seen, s)

    assert_same(program)


# --- Reuse ----------------------------------------------------------------------------


def test_reuse_inheritance():
    def program(api, seen):
        with api.variable_scope("root"):
            note(api, seen)
            api.get_variable("v")
            with api.variable_scope("foo"):
                note(api, seen)
                api.get_variable("v")
        with api.variable_scope("root", reuse=True):
            note(api, seen)
            api.get_variable("v")
            with api.variable_scope("foo", reuse=False):
                note(api, seen)
                api.get_variable("v")
            with api.variable_scope("auto", reuse=api.AUTO_REUSE):
                note(api, seen)
                api.get_variable("new")
                api.get_variable("new")
                with api.variable_scope("strict", reuse=True):
                    note(api, seen)
                with api.variable_scope("inherits"):
                    note(api, seen)
                    api.get_variable("deep")
        note(api, seen)

    _, seen = assert_same(program)
    assert seen == [
        ("root", False),
        ("root/foo", False),
        ("root", True),
        ("root/foo", True),
        ("root/auto", "AUTO_REUSE"),
        ("root/auto/strict", True),
        ("root/auto/inherits", "AUTO_REUSE"),
        ("", False),
    ]


def test_reuse_variables():
    def program(api, seen):
        with api.variable_scope("a") as a:
            api.get_variable("v")
            a.reuse_variables()
            note(api, seen)
            api.get_variable("v")
            with api.variable_scope("sub"):
                note(api, seen)
        note(api, seen, a)
        with api.variable_scope("a"):
            note(api, seen)
            api.get_variable("w")
        api.get_variable("top")
        api.get_variable_scope().reuse_variables()
        api.get_variable("top")
        with api.variable_scope("b"):
            note(api, seen)

    assert_same(program)


# --- Captured scopes --------------------------------------------------------------------


def test_captured_scope_reentry():
    def program(api, seen):
        with api.variable_scope("a"):
            with api.variable_scope("b") as captured:
                api.get_variable("v")
        with api.variable_scope("own", reuse=True) as own_reusing:
            pass
        with api.variable_scope("x"):
            with api.variable_scope(captured) as entered:
                note(api, seen, entered)
                api.get_variable("w")
                with api.variable_scope("c"):
                    note(api, seen)
                    api.get_variable("u")
            note(api, seen)
        with api.variable_scope("x", reuse=True):
            with api.variable_scope(captured):
                note(api, seen)  # the captured flag, not the current nesting's
                api.get_variable("z")
            with api.variable_scope(captured, reuse=True):
                note(api, seen)
                api.get_variable("v")
            with api.variable_scope(captured, reuse=api.AUTO_REUSE):
                note(api, seen)
                api.get_variable("v")
                api.get_variable("y")
        with api.variable_scope(own_reusing, reuse=False):
            note(api, seen)  # False cannot turn reuse off

    names, seen = assert_same(program)
    assert names == ["a/b/c/u", "a/b/v", "a/b/w", "a/b/y", "a/b/z"]
    assert seen == [
        ("a/b", False),
        ("a/b/c", False),
        ("x", False),
        ("a/b", False),
        ("a/b", True),
        ("a/b", "AUTO_REUSE"),
        ("own", True),
    ]


def test_captured_scope_is_entered_as_a_copy():
    def program(api, seen):
        with api.variable_scope("own", initializer=api.constant(0.1)) as own:
            pass
        with api.variable_scope(own) as entered:
            entered.set_initializer(api.constant(0.7))
            entered.reuse_variables()
        note(api, seen, own)
        with api.variable_scope(own):
            api.get_variable("v")  # own's initializer, own's reuse
        own.set_initializer(api.constant(0.3))
        with api.variable_scope(own):
            api.get_variable("w")
        own.reuse_variables()
        with api.variable_scope(own):
            note(api, seen)
            api.get_variable("w")

    assert_same(program)
    assert_same_values(program, ["own/v", "own/w"])


def test_reentering_the_current_scope_shares_its_variables():
    def program(api, seen):
        for i in range(2):
            with api.variable_scope(api.get_variable_scope(), reuse=i > 0 or None):
                note(api, seen)
                api.get_variable("w")
        with api.variable_scope("tower"):
            api.get_variable("w")
            with api.variable_scope(api.get_variable_scope(), reuse=True):
                note(api, seen)
                api.get_variable("w")
            note(api, seen)

    names, _ = assert_same(program)
    assert names == ["tower/w", "w"]


def test_scope_get_variable_outside_the_scope():
    def program(api, seen):
        with api.variable_scope("enc", initializer=api.constant(0.3), dtype=api.float16) as enc:
            pass
        with api.variable_scope("enc", reuse=True, dtype=api.float16) as enc_reusing:
            pass
        with api.variable_scope("other", initializer=api.constant(0.9)):
            api.scope_get_variable(enc, "w")
            api.scope_get_variable(enc_reusing, "w")
            note(api, seen)

    names, _ = assert_same(program)
    assert names == ["enc/w"]
    assert_same_values(program, ["enc/w"])


def test_original_name_scope_where_op_scopes_are_opened_once():
    def program(api, seen):
        with api.variable_scope("a") as a:
            seen.append(a.original_name_scope)
            with api.name_scope("ops"):
                with api.variable_scope("b") as b:
                    seen.append(b.original_name_scope)
            with api.variable_scope("c", auxiliary_name_scope=False) as c:
                seen.append(c.original_name_scope)
                with api.variable_scope("d") as d:
                    seen.append(d.original_name_scope)
        with api.variable_scope("x"):
            with api.variable_scope(a) as again:
                seen.append(again.original_name_scope)
                with api.variable_scope("e") as e:
                    seen.append(e.original_name_scope)
        seen.append(api.get_variable_scope().original_name_scope)

    _, seen = assert_same(program)
    assert seen == ["a/", "a/ops/b/", "a/", "a/d/", "a/", "x/a/e/", ""]


# --- Custom getters -----------------------------------------------------------------------


def test_custom_getter_composition_order():
    def program(api, seen):
        def tagged(tag):
            def getter(getter, name, *args, **kwargs):
                seen.append((tag, name))
                return getter(name, *args, **kwargs)

            return getter

        with api.variable_scope("o", custom_getter=tagged("outer")) as o:
            with api.variable_scope("m", custom_getter=tagged("middle")):
                with api.variable_scope("i", custom_getter=tagged("inner")):
                    api.get_variable("v")
                with api.variable_scope("plain"):
                    api.get_variable("v")
        with api.variable_scope("elsewhere", custom_getter=tagged("elsewhere")):
            with api.variable_scope(o):
                api.get_variable("w")
            with api.variable_scope(o, custom_getter=tagged("override")):
                api.get_variable("x")
            api.get_variable("y")
        api.get_variable_scope().set_custom_getter(tagged("root"))
        with api.variable_scope("late", custom_getter=tagged("late")):
            api.get_variable("z")

    _, seen = assert_same(program)
    assert seen == [
        ("inner", "o/m/i/v"),
        ("middle", "o/m/i/v"),
        ("outer", "o/m/i/v"),
        ("middle", "o/m/plain/v"),
        ("outer", "o/m/plain/v"),
        ("outer", "o/w"),
        ("override", "o/x"),
        ("outer", "o/x"),
        ("elsewhere", "elsewhere/y"),
        ("late", "late/z"),
        ("root", "late/z"),
    ]


# --- Inherited initializers and dtypes ---------------------------------------------------


def test_initializer_inheritance():
    def program(api, seen):
        c = api.constant
        with api.variable_scope("foo", initializer=c(0.4)) as foo:
            api.get_variable("v")
            api.get_variable("w", initializer=c(0.3))
            with api.variable_scope("bar"):
                api.get_variable("v")
            with api.variable_scope("baz", initializer=c(0.2)):
                api.get_variable("v")
                with api.variable_scope("deep"):
                    api.get_variable("v")
            with api.variable_scope("set") as s:
                s.set_initializer(c(0.1))
                api.get_variable("v")
        with api.variable_scope("other", initializer=c(0.9)):
            with api.variable_scope(foo):
                api.get_variable("captured")
            with api.variable_scope(foo, initializer=c(0.8)):
                api.get_variable("overridden")
        api.get_variable_scope().set_initializer(c(0.6))
        api.get_variable("root_v")
        with api.variable_scope("after_root"):
            api.get_variable("v")

    names, _ = assert_same(program)
    assert_same_values(program, names)
    assert len(names) == 10


def test_dtype_inheritance():
    def program(api, seen):
        with api.variable_scope("half", dtype=api.float16) as half:
            api.get_variable("v")
            with api.variable_scope("inherits"):
                api.get_variable("v")
            api.get_variable("explicit", dtype=api.float32)
        with api.variable_scope("elsewhere"):
            with api.variable_scope(half):
                api.get_variable("captured")
        api.get_variable_scope().set_dtype(api.float16)
        api.get_variable("root_v")

    assert_same(program)


# --- Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("auto", [False, True], ids=["true", "auto_reuse"])
def test_reuse_with_default_name_is_a_value_error(auto):
    def program(api, seen):
        with api.variable_scope(None, default_name="layer", reuse=api.AUTO_REUSE if auto else True):
            pass

    raise_same(program, ValueError)


def test_no_name_and_no_default_name_is_a_type_error():
    def program(api, seen):
        with api.variable_scope(None):
            pass

    raise_same(program, TypeError)


def test_exiting_out_of_order_is_a_runtime_error():
    def program(api, seen):
        outer = api.variable_scope("outer")
        outer.__enter__()
        inner = api.variable_scope("inner")
        inner.__enter__()
        try:
            outer.__exit__(None, None, None)
        finally:
            inner.__exit__(None, None, None)  # else TF1's graph stack stays misnested

    raise_same(program, RuntimeError)


def test_second_creation_without_reuse_is_a_value_error():
    def program(api, seen):
        with api.variable_scope("foo"):
            api.get_variable("v")
        with api.variable_scope("foo"):
            api.get_variable("v")

    raise_same(program, ValueError)


def test_reuse_of_a_missing_variable_is_a_value_error():
    def program(api, seen):
        with api.variable_scope("foo", reuse=True):
            api.get_variable("v")

    raise_same(program, ValueError)


def test_reuse_false_inside_reuse_true_cannot_create():
    def program(api, seen):
        with api.variable_scope("foo", reuse=True):
            with api.variable_scope("bar", reuse=False):
                api.get_variable("v")

    raise_same(program, ValueError)
