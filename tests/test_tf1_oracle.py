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
- ``VariableScope.get_variable`` takes no ``var_store`` argument;
- custom getters receive TF1's keyword names plus ``sharding``; the values of
  the keywords that mean nothing in JAX (``collections``, ``caching_device``,
  ``synchronization``, ...) are not compared;
- partitioners: TF1 splits a variable into ``part_i`` variables where
  jaxscope keeps one variable with a ``PartitionSpec``, so partitioned
  programs compare errors and scalars only;
- a non-callable ``custom_getter`` is refused when the scope is entered in
  jaxscope (DESIGN §2), at the first ``get_variable`` inside it in TF1: the
  error type is compared, not the line (TF1 even raises ``TypeError`` when
  the scope is nested in another getter's, wrapping the non-callable);
- TF1 exits the op-name scope of a refused out-of-order exit; jaxscope keeps
  it (DESIGN §2), so op names after a refused exit are not compared.

A test marked ``xfail(strict=True)`` pins a known difference from TF1 that
DESIGN.md does not settle; its reason says what differs.
"""

import pytest

import jaxscope as js

from .tf1_adapter import (
    JS,
    assert_same,
    assert_same_values,
    note,
    nvidia_float32_variable_storage_getter,
    raise_same,
    run_jaxscope,
    run_tf1,
    tf1_error,
)


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


# --- Issue 13: argument errors keep TF1's one built-in base (item 1) ------------------


@pytest.mark.parametrize("reuse", ["yes", 1], ids=["str", "int"])
def test_a_bad_reuse_value_is_a_value_error(reuse):
    def program(api, seen):
        with api.variable_scope("s", reuse=reuse):
            pass

    raise_same(program, ValueError, words=["reuse"])


def test_a_name_that_is_neither_str_nor_scope_is_a_type_error():
    def program(api, seen):
        with api.variable_scope(3):
            pass

    raise_same(program, TypeError, words=["name_or_scope"])


# --- Issue 13: a refused out-of-order exit changes nothing (item 2) -------------------


def test_a_refused_out_of_order_exit_leaves_the_scope_as_it_was():
    def program(api, seen):
        with api.variable_scope("top"):
            with api.variable_scope("aa"):
                bb = api.variable_scope("bb")
                bb.__enter__()
                with api.variable_scope("cc"):
                    try:
                        bb.__exit__(None, None, None)
                    except RuntimeError:
                        seen.append("refused")
                    note(api, seen)
                    seen.append(api.name_of(api.get_variable("v")))
                note(api, seen)
                bb.__exit__(None, None, None)  # in order now
                note(api, seen)
                seen.append(api.name_of(api.get_variable("w")))
            note(api, seen)

    _, seen = assert_same(program)
    assert seen == [
        "refused",
        ("top/aa/bb/cc", False),
        "top/aa/bb/cc/v",
        ("top/aa/bb", False),
        ("top/aa", False),
        "top/aa/w",
        ("top", False),
    ]


# --- Issue 13: auxiliary_name_scope must be a bool (item 4) ---------------------------


@pytest.mark.parametrize("value", ["invalid", 1, None], ids=["str", "int", "none"])
def test_a_non_bool_auxiliary_name_scope_is_a_type_error(value):
    def program(api, seen):
        with api.variable_scope("scope", auxiliary_name_scope=value):
            pass

    raise_same(program, TypeError, words=["auxiliary_name_scope"])


# --- Issue 13: a non-callable custom getter (item 5) ----------------------------------


def test_a_non_callable_custom_getter_on_a_reentered_scope_is_a_value_error():
    def program(api, seen):
        with api.variable_scope("enc") as enc:
            api.get_variable("w")
        with api.variable_scope(enc, reuse=True, custom_getter=3):
            api.get_variable("w")

    error = raise_same(program, ValueError, words=["custom_getter", "enc"])
    assert "callable" in str(error)


# --- Issue 13: re-entering an op-name scope absolutely (item 6) -----------------------


def test_name_scope_of_an_original_name_scope_reenters_it():
    def program(api, seen):
        with api.variable_scope("outer"):
            with api.variable_scope("inner") as inner:
                pass
        with api.name_scope("other"):
            with api.name_scope(inner.original_name_scope) as reentered:
                seen.append(reentered)
                seen.append(api.op_name("c"))
                with api.name_scope("bar") as bar:
                    seen.append(bar)
                seen.append(api.name_of(api.get_variable("w")))  # variable names unchanged
            seen.append(api.op_name("d"))

    _, seen = assert_same(program)
    assert seen == ["outer/inner/", "outer/inner/c", "outer/inner/bar/", "w", "other/d"]


# --- Issue 13: custom getters are called as TF1 calls them (item 8) -------------------

DTYPE_NONE = "not in issue 13: a custom getter gets dtype=None where TF1 passes float32"


def test_nvidia_float32_storage_getter_works_verbatim():
    def program(api, seen):
        getter = nvidia_float32_variable_storage_getter(api.tf)
        with api.variable_scope("fp16", custom_getter=getter, dtype=api.float16):
            w = api.get_variable("w", [2], initializer=api.constant(0.5))
            with api.variable_scope("dense"):
                k = api.get_variable("k", [2, 3], initializer=api.constant(0.25))
        with api.variable_scope("fp16", custom_getter=getter, dtype=api.float16, reuse=True):
            w2 = api.get_variable("w", [2])
        seen.extend(api.dtype_name(x) for x in (w, k, w2))
        return {"w": w, "k": k, "w2": w2}

    _, seen = assert_same(program)
    assert seen == ["float16"] * 3
    assert_same_values(program, ["fp16/w", "fp16/dense/k"])


def test_nvidia_float32_storage_getter_in_a_float32_scope_returns_the_variable():
    def program(api, seen):
        getter = nvidia_float32_variable_storage_getter(api.tf)
        with api.variable_scope("fp32", custom_getter=getter):
            w = api.get_variable("w", [2])
        seen.append(api.name_of(w))  # not cast: the variable itself
        seen.append(api.dtype_name(w))

    _, seen = assert_same(program)
    assert seen == ["fp32/w", "float32"]


@pytest.mark.xfail(strict=True, reason=DTYPE_NONE)
def test_custom_getter_receives_the_default_float32_dtype():
    def program(api, seen):
        def getter(getter, name, *args, **kwargs):
            seen.append(api.dtype_of(kwargs["dtype"]))
            return getter(name, *args, **kwargs)

        with api.variable_scope("s", custom_getter=getter):
            api.get_variable("v", [2])
            with api.variable_scope("half", dtype=api.float16):
                api.get_variable("v", [2])

    _, seen = assert_same(program)
    assert seen == ["float32", "float16"]


def test_keyword_only_custom_getter_works():
    def g(**kw):
        return kw.pop("getter")(**kw)

    def program(api, seen):
        with api.variable_scope("s", custom_getter=g) as s:
            seen.append(api.name_of(api.get_variable("v", [2])))
        with api.variable_scope(s, reuse=True):
            seen.append(api.name_of(api.get_variable("v", [2])))

    _, seen = assert_same(program)
    assert seen == ["s/v", "s/v"]


def test_custom_getter_passes_tf1s_positional_order_on():
    def program(api, seen):
        def positional(
            getter, name, shape, dtype, initializer, regularizer, reuse, trainable, **kw
        ):
            return getter(
                name, shape, api.float16, initializer, regularizer, reuse, trainable, **kw
            )

        with api.variable_scope("s", custom_getter=positional):
            v = api.get_variable("v", [2])
        seen.append(api.name_of(v))
        seen.append(api.dtype_name(v))

    _, seen = assert_same(program)
    assert seen == ["s/v", "float16"]


def test_trainable_passed_sixth_lands_on_reuse_as_in_tf1():
    # TF1's getter takes (name, shape, dtype, initializer, regularizer, reuse,
    # trainable, ...): a getter passing trainable sixth and the rest by keyword
    # gives reuse twice, a TypeError in both.
    def program(api, seen):
        def misplaced(getter, name, shape=None, dtype=None, initializer=None, regularizer=None,
                      trainable=True, *args, **kwargs):  # fmt: skip
            return getter(name, shape, dtype, initializer, regularizer, trainable, *args, **kwargs)

        with api.variable_scope("s", custom_getter=misplaced):
            api.get_variable("v", [2])

    tf_error = tf1_error(program)
    assert type(tf_error) is TypeError and "reuse" in str(tf_error)
    with pytest.raises(TypeError, match="reuse"):
        js.transform(lambda: program(JS, [])).init(0)


def test_custom_getter_receives_tf1s_keywords():
    def program(api, seen):
        def getter(getter, *args, **kwargs):
            seen.append((args, sorted(kwargs)))
            return getter(*args, **kwargs)

        with api.variable_scope("s", custom_getter=getter):
            api.get_variable("v", [2])

    [(tf_args, tf_keys)] = run_tf1(program).seen
    [(js_args, js_keys)] = run_jaxscope(program).seen
    assert tf_args == js_args == ()  # entirely by keyword
    assert set(js_keys) == set(tf_keys) | {"sharding"}


# --- Issue 13: a reuse lookup asks for the scope's dtype (item 10) --------------------


def test_reuse_with_a_concrete_initializer_asks_for_the_scope_dtype():
    def program(api, seen):
        with api.variable_scope("s", dtype=api.float16):
            api.get_variable("v", None, initializer=[1.0])  # float32: its own dtype
        with api.variable_scope("s", reuse=True, dtype=api.float16):
            api.get_variable("v", None, initializer=[1.0])

    raise_same(program, ValueError, words=["s/v", "float16", "float32"])


def test_a_concrete_initializer_keeps_its_dtype_in_a_float16_scope():
    def program(api, seen):
        with api.variable_scope("s", dtype=api.float16):
            v = api.get_variable("v", None, initializer=[1.0])
            i = api.get_variable("i", None, initializer=[1, 2])
        seen.extend(api.dtype_name(x) for x in (v, i))

    _, seen = assert_same(program)
    assert seen == ["float32", "int32"]


# --- Issue 13: partitioners (items 12, 13) --------------------------------------------


def test_partitioners_are_never_called_for_scalars():
    def program(api, seen):
        calls = []

        def partitioner(*args, **kwargs):
            calls.append(args or kwargs)
            return api.partitioner(2)(*args, **kwargs)

        with api.variable_scope("outer", partitioner=partitioner) as outer:
            with api.variable_scope("inner", reuse=api.AUTO_REUSE):
                api.get_variable("step", (), initializer=api.zeros)
                api.get_variable("step", ())
        with api.variable_scope("elsewhere"):
            api.scope_get_variable(outer, "scale", ())
        seen.append(len(calls))

    names, seen = assert_same(program)
    assert names == ["outer/inner/step", "outer/scale"]
    assert seen == [0]


def test_reuse_asking_get_variable_for_another_partitioning_is_a_value_error():
    # TF1's get_variable takes a partitioner, jaxscope's a sharding.
    def program(api, seen):
        with api.variable_scope("enc", partitioner=api.partitioner(2)):
            api.get_variable("w", (4, 2))
        with api.variable_scope("enc", reuse=True):
            api.get_partitioned("w", (4, 2), parts=3)

    raise_same(program, ValueError, words=["enc/w"])
