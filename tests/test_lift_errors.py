"""The error paths of the lifted transforms (DESIGN §6): each error's type and
the words that matter in its message, the variable's path and the fix.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import paths, run_both

T, B, D, HIDDEN = 5, 2, 3, 4  # time steps, batch, input size, LSTM size
N = 4  # layers in a layer stack
XS = jax.random.normal(jax.random.key(42), (T, B, D))
X = jax.random.normal(jax.random.key(7), (B, D))


# --- Error paths ------------------------------------------------------------


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
