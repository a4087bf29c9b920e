"""Scope settings inherited by sub-scopes and ``get_variable`` calls, and the
``VariableScope`` object's attributes and methods (DESIGN §2).
"""

import functools

import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jaxscope as js

from .conftest import observe, paths, run_both

const = js.initializers.constant


# --- Inherited settings ------------------------------------------------------------


def test_initializer_is_inherited_and_overridden():
    def program():
        with js.variable_scope("a", initializer=const(0.4)):
            js.get_variable("v", [1])
            js.get_variable("explicit", [1], initializer=const(0.3))
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", initializer=const(0.2)):
                js.get_variable("v", [1])
                with js.variable_scope("inherits"):
                    js.get_variable("v", [1])
            with js.variable_scope("set") as s:
                s.set_initializer(const(0.1))
                js.get_variable("v", [1])

    params = run_both(program).params
    values = {k: float(v[0]) for k, v in js.flatten(params).items()}
    assert values == pytest.approx(
        {
            "a/v": 0.4,
            "a/explicit": 0.3,
            "a/inherits/v": 0.4,
            "a/overrides/v": 0.2,
            "a/overrides/inherits/v": 0.2,
            "a/set/v": 0.1,
        }
    )


def test_regularizer_is_inherited_and_overridden():
    def times(k):
        return lambda v: k * jnp.sum(v)

    def program(seen):
        init = js.initializers.ones
        with js.variable_scope("a", regularizer=times(1.0)):
            js.get_variable("v", [2], initializer=init)
            with js.variable_scope("inherits") as s:
                seen.append(s.regularizer is not None)
                js.get_variable("v", [2], initializer=init)
            with js.variable_scope("overrides", regularizer=times(10.0)):
                js.get_variable("v", [2], initializer=init)
            js.get_variable("explicit", [2], initializer=init, regularizer=times(100.0))
        js.get_variable("none", [2], initializer=init)
        return js.get_regularization_losses()

    runs, seen = observe(program)
    assert seen == [True]
    np.testing.assert_allclose(runs.out_jit, [2.0, 2.0, 20.0, 200.0])


def test_constraint_is_inherited_and_overridden():
    def clip(v):
        return jnp.clip(v, -1.0, 1.0)

    def nonneg(v):
        return jnp.maximum(v, 0.0)

    def explicit(v):
        return v

    def program():
        with js.variable_scope("a", constraint=clip):
            js.get_variable("v", [1])
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", constraint=nonneg):
                js.get_variable("v", [1])
            js.get_variable("explicit", [1], constraint=explicit)
        js.get_variable("none", [1])

    run_both(program)
    constraints = js.flatten(js.get_constraints(js.transform(program), 0))
    assert constraints == {
        "a/v": clip,
        "a/inherits/v": clip,
        "a/overrides/v": nonneg,
        "a/explicit": explicit,
    }


def test_dtype_is_inherited_and_overridden():
    def program(seen):
        with js.variable_scope("a", dtype=jnp.bfloat16) as a:
            seen.append(jnp.dtype(a.dtype))
            js.get_variable("v", [1])
            with js.variable_scope("inherits"):
                js.get_variable("v", [1])
            with js.variable_scope("overrides", dtype=jnp.float16):
                js.get_variable("v", [1])
            js.get_variable("explicit", [1], dtype=jnp.float32)
            js.get_variable("count", [1], dtype=jnp.int32)

    runs, seen = observe(program)
    assert seen == [jnp.dtype(jnp.bfloat16)]
    assert {k: v.dtype for k, v in js.flatten(runs.params).items()} == {
        "a/v": jnp.bfloat16,
        "a/inherits/v": jnp.bfloat16,
        "a/overrides/v": jnp.float16,
        "a/explicit": jnp.float32,
        "a/count": jnp.int32,
    }


def test_partitioner_is_inherited_overridden_and_called_with_name_shape_dtype():
    def program(seen):
        def outer(name, shape, dtype):
            seen.append(("outer", name, shape, jnp.dtype(dtype)))
            return P("data")

        def inner(name, shape, dtype):
            seen.append(("inner", name, shape, jnp.dtype(dtype)))
            return None

        with js.variable_scope("a", partitioner=outer) as a:
            assert a.partitioner is outer
            js.get_variable("v", [4, 2])
            with js.variable_scope("inherits", dtype=jnp.bfloat16):
                js.get_variable("v", [3])
            with js.variable_scope("overrides", partitioner=inner):
                js.get_variable("v", [1])
            js.get_variable("given", [2], sharding=P(None))  # explicit: not asked

    _, seen = observe(program)
    f32, bf16 = jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)
    assert seen == [
        ("outer", "a/v", (4, 2), f32),
        ("outer", "a/inherits/v", (3,), bf16),
        ("inner", "a/overrides/v", (1,), f32),
    ]


def test_custom_getter_is_inherited_by_subscopes():
    def program(seen):
        def getter(getter, name, **kwargs):
            seen.append(name)
            return getter(name, **kwargs)

        with js.variable_scope("a", custom_getter=getter):
            with js.variable_scope("b"):
                js.get_variable("v", [1])
                js.get_variable("v2", [1])
        js.get_variable("outside", [1])

    _, seen = observe(program)
    assert seen == ["a/b/v", "a/b/v2"]


def test_nested_custom_getters_compose_inner_first():
    """TF1's order: the inner scope's getter receives a getter that calls the
    outer's, so inner runs first and sees what outer returns."""

    def program(seen):
        def tagged(tag, fn):
            def getter(getter, name, **kwargs):
                seen.append(tag)
                return fn(getter(name, **kwargs))

            return getter

        with js.variable_scope("o", custom_getter=tagged("outer", lambda v: v * 2.0)):
            with js.variable_scope("m", custom_getter=tagged("middle", lambda v: v + 1.0)):
                with js.variable_scope("i", custom_getter=tagged("inner", lambda v: v * 10.0)):
                    return js.get_variable("v", [1], initializer=js.initializers.ones)

    runs, seen = observe(program)
    assert seen == ["inner", "middle", "outer"]
    np.testing.assert_allclose(runs.out_jit, [(1.0 * 2.0 + 1.0) * 10.0])
    np.testing.assert_allclose(runs.params["o"]["m"]["i"]["v"], [1.0])


def test_captured_scope_getter_composes_with_its_own_getter_not_the_current_nestings():
    def program(seen):
        def tagged(tag):
            def getter(getter, name, **kwargs):
                seen.append((tag, name))
                return getter(name, **kwargs)

            return getter

        with js.variable_scope("own", custom_getter=tagged("own")) as own:
            pass
        with js.variable_scope("elsewhere", custom_getter=tagged("elsewhere")):
            with js.variable_scope(own):
                js.get_variable("v", [1])
            with js.variable_scope(own, custom_getter=tagged("override")):
                js.get_variable("w", [1])

    _, seen = observe(program)
    assert seen == [("own", "own/v"), ("override", "own/w"), ("own", "own/w")]


# --- VariableScope objects ----------------------------------------------------------


def test_scope_properties_reflect_the_arguments():
    init, reg, con, part = const(0.5), (lambda v: None), (lambda v: v), (lambda n, s, d: None)

    def getter(getter, name, **kwargs):
        return getter(name, **kwargs)

    def program(seen):
        with js.variable_scope(
            "a",
            reuse=js.AUTO_REUSE,
            initializer=init,
            regularizer=reg,
            constraint=con,
            custom_getter=getter,
            dtype=jnp.bfloat16,
            partitioner=part,
        ) as s:
            seen.append(
                (
                    s.name,
                    s.original_name_scope,
                    s.reuse,
                    s.initializer is init,
                    s.regularizer is reg,
                    s.constraint is con,
                    s.custom_getter is getter,
                    jnp.dtype(s.dtype),
                    s.partitioner is part,
                )
            )
            seen.append(js.get_variable_scope() is s)

    _, seen = observe(program)
    assert seen == [
        ("a", "a/", js.AUTO_REUSE, True, True, True, True, jnp.dtype(jnp.bfloat16), True),
        True,
    ]


def test_set_methods_update_the_properties_and_later_variables():
    init, reg, con, part = (
        const(0.5),
        (lambda v: 3.0 * jnp.sum(v)),
        (lambda v: v),
        (lambda n, s, d: None),
    )

    def getter(getter, name, **kwargs):
        return getter(name, **kwargs) + 1.0

    def program(seen):
        with js.variable_scope("a") as s:
            s.set_initializer(init)
            s.set_regularizer(reg)
            s.set_constraint(con)
            s.set_custom_getter(getter)
            s.set_dtype(jnp.bfloat16)
            s.set_partitioner(part)
            seen.append(
                (
                    s.initializer is init,
                    s.regularizer is reg,
                    s.constraint is con,
                    s.custom_getter is getter,
                    jnp.dtype(s.dtype),
                    s.partitioner is part,
                )
            )
            v = js.get_variable("v", [2])
        return v, js.get_regularization_loss()

    runs, seen = observe(program)
    assert seen == [(True, True, True, True, jnp.dtype(jnp.bfloat16), True)]
    v = runs.params["a"]["v"]
    assert v.dtype == jnp.bfloat16
    np.testing.assert_allclose(v.astype(jnp.float32), [0.5, 0.5])
    np.testing.assert_allclose(runs.out_jit[0].astype(jnp.float32), [1.5, 1.5])  # getter
    np.testing.assert_allclose(runs.out_jit[1], 3.0)
    assert js.flatten(js.get_constraints(js.transform(functools.partial(program, [])), 0)) == {
        "a/v": con
    }


def test_scope_get_variable_uses_the_scopes_name_and_settings_outside_the_scope():
    def program(seen):
        with js.variable_scope("enc", initializer=const(0.3), dtype=jnp.bfloat16) as enc:
            pass
        with js.variable_scope("other", initializer=const(0.9), dtype=jnp.float16):
            with js.name_scope("ops"):
                v = enc.get_variable("w", [2])
                seen.append(js.get_variable_scope().name)  # no scope was opened
        return v

    runs, seen = observe(program)
    assert seen == ["other"]
    assert paths(runs.params) == ["enc/w"]
    w = runs.params["enc"]["w"]
    assert w.dtype == jnp.bfloat16
    np.testing.assert_allclose(w.astype(jnp.float32), [0.3, 0.3], rtol=1e-2)


def test_scope_get_variable_uses_the_scopes_reuse_flag():
    def program():
        with js.variable_scope("enc"):
            w = js.get_variable("w", [1])
        with js.variable_scope("enc", reuse=True) as enc_reusing:
            pass
        with js.variable_scope("other"):
            assert enc_reusing.get_variable("w", [1]) is w
        return w

    run_both(program)


def test_scope_get_variable_on_a_non_reusing_scope_creates():
    def program():
        with js.variable_scope("enc") as enc:
            w = js.get_variable("w", [1])
        with js.variable_scope("dec", reuse=True):
            enc.get_variable("w", [1])  # enc's reuse is False: a second creation
        return w

    with pytest.raises(js.errors.VariableExistsError) as info:
        js.transform(program).init(0)
    assert isinstance(info.value, ValueError)
    assert "enc/w" in str(info.value) and "reuse=True" in str(info.value)


def test_scope_get_variable_goes_through_the_scopes_custom_getter():
    def program(seen):
        def getter(getter, name, **kwargs):
            seen.append(name)
            return getter(name, **kwargs)

        with js.variable_scope("enc", custom_getter=getter) as enc:
            pass
        enc.get_variable("w", [1])

    _, seen = observe(program)
    assert seen == ["enc/w"]
