"""State (``trainable=False`` variables and ``js.assign``) through lifted
transforms, and ``js.layer_stack`` inside other lifted bodies with per-layer
inputs and outputs: each lifted program against the unrolled Python program
that does the same.

Both programs' ``init`` must give bit-identical trees, and their ``apply``
bit-identical outputs and new state when run op by op
(``jax.disable_jit()``, under which ``lax.scan`` and the other loops run as
Python loops): the same operations on the same values. Compiled, XLA fuses
a loop body's operations otherwise than the unrolled program's (as it does
for pure JAX: a ``lax.scan`` and its unrolled loop may differ in the last
bit), so jitted apply is compared to float32 rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

from .conftest import assert_close

D, T, LAYERS = 3, 4, 3
XS = np.random.default_rng(0).standard_normal((T, 2, D)).astype(np.float32)
# Batch norm over a batch of 8: over 2 rows, rounding in the normalization
# of nearly equal rows would dominate the comparison of compiled programs.
BATCH = np.random.default_rng(1).standard_normal((T, 8, D)).astype(np.float32)


def same(a, b):
    """Bit-identical trees: the same names, shapes, dtypes and values."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def run(model, *args):
    """``(params, state, out, new_state)`` of ``model``: init, then apply op by
    op, whose outputs must be those of jitted apply (to rounding). The model
    runs in a scope ``m`` (which :func:`read` re-enters), left out of the
    trees returned."""

    def in_scope(*a):
        with js.variable_scope("m"):
            return model(*a)

    f = js.transform_with_state(in_scope)
    params, state = f.init(0, *args)
    with jax.disable_jit():
        out, new_state = f.apply(params, state, *args)
    assert_close((out, new_state), jax.jit(f.apply)(params, state, *args))
    return params.get("m", {}), state.get("m", {}), out, new_state.get("m", {})


def assert_same_program(lifted, unrolled, *args):
    """Both programs create the same variables with the same initial values,
    and give the same outputs and new state."""
    for a, b in zip(run(lifted, *args), run(unrolled, *args), strict=True):
        same(a, b)


def read(name):
    """The variable ``name`` of the current scope, obtained earlier in the call."""
    with js.variable_scope(js.get_variable_scope(), reuse=True, auxiliary_name_scope=False):
        return js.get_variable(name)


# --- js.scan and js.while_loop: state carried between iterations ------------------


def running_stats(h, x):
    """A step that reads state, assigns it, and creates some (a counter with
    a random initial value, so that the initial values are compared too)."""
    with js.variable_scope("cell", reuse=js.AUTO_REUSE):
        w = js.get_variable("w", [D, D])
        mean = js.get_variable("mean", [D], initializer=js.initializers.zeros, trainable=False)
        seen = js.get_variable(
            "seen", [], initializer=js.initializers.random_normal(), trainable=False
        )
        js.assign("mean", 0.9 * mean + 0.1 * jnp.mean(x, 0))
        js.assign("seen", seen + 1.0)
        h = jnp.tanh(h @ w + x + read("mean"))
    return h, mean


def test_scan_carries_state_between_iterations_as_the_unrolled_loop():
    def lifted(xs):
        return js.scan(running_stats, jnp.zeros((2, D)), xs)

    def unrolled(xs):
        h, ys = jnp.zeros((2, D)), []
        for x in xs:
            h, y = running_stats(h, x)
            ys.append(y)
        return h, jnp.stack(ys)

    assert_same_program(lifted, unrolled, XS)


def test_scan_state_final_values_are_read_after_the_loop():
    def model(xs):
        js.scan(running_stats, jnp.zeros((2, D)), xs)
        return read("cell/seen")

    _, state, seen_after, new_state = run(model, XS)
    expected = state["cell"]["seen"]
    for _ in range(T):
        expected = expected + np.float32(1.0)
    np.testing.assert_array_equal(seen_after, expected)
    np.testing.assert_array_equal(new_state["cell"]["seen"], seen_after)


def test_state_assigned_before_a_scan_is_what_its_first_iteration_reads():
    def model(xs):
        count = js.get_variable("count", [], jnp.int32, trainable=False)
        js.assign("count", count + 10)

        def step(c, _):
            n = read("count")
            js.assign("count", n + 1)
            return c, n

        return js.scan(step, 0, xs)[1]

    _, _, seen, new_state = run(model, XS)
    np.testing.assert_array_equal(seen, [10, 11, 12, 13])
    assert int(new_state["count"]) == 14


def test_while_loop_carries_state_as_the_unrolled_loop():
    def lifted(x):
        def body(loop):
            i, h = loop
            return i + 1, running_stats(h, x)[0]

        return js.while_loop(lambda loop: loop[0] < T, body, (0, jnp.zeros((2, D))))[1]

    def unrolled(x):
        h = jnp.zeros((2, D))
        for _ in range(T):
            h = running_stats(h, x)[0]
        return h

    assert_same_program(lifted, unrolled, XS[0])


def test_while_loop_condition_reads_the_carried_state():
    def model():
        count = js.get_variable("count", [], jnp.int32, trainable=False)

        def body(i):
            js.assign("count", read("count") + 2)
            return i + 1

        def below_seven(i):
            return read("count") < 7

        js.while_loop(below_seven, body, 0)
        return count

    _, _, _, new_state = run(model)
    assert int(new_state["count"]) == 8


def test_assigning_in_a_while_loop_condition_names_the_fix():
    def model():
        js.get_variable("count", [], jnp.int32, trainable=False)

        def cond(i):
            js.assign("count", read("count") + 1)
            return i < 3

        return js.while_loop(cond, lambda i: i + 1, 0)

    with pytest.raises(
        errors.LiftError, match=r"js.assign to variable count in js.while_loop's cond_fun"
    ):
        js.transform_with_state(model).init(0)


def test_state_first_obtained_inside_a_body_in_apply_is_carried():
    def model(xs):
        def step(c, x):
            total = js.get_variable("total", [D], trainable=False)
            js.assign("total", total + jnp.sum(x, 0))
            return c, None

        js.scan(step, 0, xs)
        return read("total")

    _, state, total, new_state = run(model, XS)
    np.testing.assert_allclose(total, state["total"] + XS.sum((0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(new_state["total"], total)


def test_state_is_carried_through_nested_lifted_bodies():
    def step(c, x):
        def inner(c, xi):
            n = js.get_variable("n", [], jnp.int32, trainable=False)
            js.assign("n", n + 1)
            return c + n, None

        return js.scan(inner, c, x)[0], None

    def lifted(xs):
        return js.scan(step, 0, xs)[0]

    def unrolled(xs):
        c = 0
        for i, x in enumerate(xs):
            for j in range(len(x)):
                n = (
                    js.get_variable("n", [], jnp.int32, trainable=False)
                    if i + j == 0
                    else read("n")
                )
                js.assign("n", n + 1)
                c = c + n
        return c

    assert_same_program(lifted, unrolled, XS)


# --- js.cond, js.remat, js.vmap ------------------------------------------------------


def branches(name_true, name_false):
    def make(name, step):
        def branch(x):
            v = js.get_variable(name, [D], trainable=False)
            js.assign(name, v + step)
            return x * 2.0

        return branch

    return make(name_true, 1.0), make(name_false, -1.0)


@pytest.mark.parametrize("taken", [True, False])
def test_cond_keeps_the_taken_branchs_assignments(taken):
    def lifted(x):
        return js.cond(taken, *branches("up", "down"), x)

    def unrolled(x):
        up, down = branches("up", "down")
        # Both branches' variables exist, as in init of the lifted program.
        js.get_variable("up", [D], trainable=False)
        js.get_variable("down", [D], trainable=False)
        with js.variable_scope(js.get_variable_scope(), reuse=True, auxiliary_name_scope=False):
            return up(x) if taken else down(x)

    assert_same_program(lifted, unrolled, XS[0])


def test_remat_reads_and_assigns_state_as_outside():
    def body(x):
        v = js.get_variable("v", [D], trainable=False)
        js.assign("v", v * 2.0 + jnp.sum(x))
        return jnp.sin(x) * read("v")

    assert_same_program(js.remat(body), body, XS[0])


def test_vmap_assigns_a_value_shared_by_the_batch():
    def per_example(x):
        mean = js.get_variable("mean", [D], trainable=False)
        js.assign("mean", 0.5 * mean + 0.5 * jax.lax.pmean(x, "batch"))
        return x - mean

    def lifted(xs):
        return js.vmap(per_example, axis_name="batch")(xs)

    def unrolled(xs):
        mean = js.get_variable("mean", [D], trainable=False)
        js.assign("mean", 0.5 * mean + 0.5 * jnp.mean(xs, 0))
        return xs - mean

    params, state, out, new_state = run(lifted, XS[0])
    expected = run(unrolled, XS[0])
    same((params, state), expected[:2])
    np.testing.assert_allclose(out, expected[2], rtol=1e-6)
    np.testing.assert_allclose(new_state["mean"], expected[3]["mean"], rtol=1e-6)


def test_vmap_assigning_a_per_example_value_is_ambiguous_and_named():
    def model(xs):
        js.get_variable("other", [], trainable=False)
        js.get_variable("last", [D], trainable=False)
        return js.vmap(lambda x: js.assign("last", x))(xs)

    f = js.transform_with_state(model)
    with pytest.raises(errors.LiftError) as info:
        f.init(0, XS[0])
    message = str(info.value)
    assert "js.assign to variable last inside js.vmap" in message and "pmean" in message
    state = {"other": jnp.zeros(()), "last": jnp.zeros(D)}
    with pytest.raises(errors.LiftError, match="variable last inside js.vmap"):
        jax.jit(f.apply)({}, state, XS[0])


# --- js.layer_stack: per-layer state -----------------------------------------------


def normalized_layer(x, is_training=True):
    w = js.get_variable("w", [D, D])
    x = js.nn.batch_norm(x @ w, is_training=is_training, name="bn")
    return jax.nn.relu(x)


def unrolled_layers(layer, n=LAYERS):
    def model(x, *args):
        for i in range(n):
            with js.variable_scope(f"layer_{i}"):
                x = layer(x, *args)
        return x

    return model


def test_layer_stack_batch_norm_statistics_are_per_layer_as_unrolled():
    def lifted(x):
        with js.variable_scope("stack"):
            return js.layer_stack(LAYERS)(normalized_layer)(x)

    def unrolled(x):
        with js.variable_scope("stack"):
            return unrolled_layers(normalized_layer)(x)

    params, state, out, new_state = run(lifted, BATCH[0])
    expected = run(unrolled, BATCH[0])
    assert state["stack"]["bn"]["moving_mean"].shape == (LAYERS, D)
    for stacked, unstacked in zip(
        (params, state, new_state), expected[:2] + expected[3:], strict=True
    ):
        same(stacked["stack"], js.stack_layers(unstacked["stack"]))
    same(out, expected[2])


def test_each_layer_updates_only_its_own_slice():
    def model(x):
        @js.layer_stack(LAYERS)
        def layer(x):
            hits = js.get_variable("hits", [], jnp.int32, trainable=False)
            index = js.get_variable("index", [], jnp.int32, trainable=False)
            js.assign("hits", hits + 1)
            js.assign("index", index + jnp.int32(x[0]))
            return x + 1.0

        return layer(x)

    _, state, _, new_state = run(model, jnp.zeros(2))
    np.testing.assert_array_equal(new_state["hits"], [1, 1, 1])
    np.testing.assert_array_equal(new_state["index"], [0, 1, 2])


def test_state_created_outside_a_layer_stack_is_carried_from_layer_to_layer():
    def counted(outer):
        def body(x):
            with js.variable_scope(outer, reuse=True):
                js.assign("calls", js.get_variable("calls") + 1)
            return x * 2.0

        return body

    def lifted(x):
        js.get_variable("calls", [], jnp.int32, trainable=False)
        return js.layer_stack(LAYERS)(counted(js.get_variable_scope()))(x)

    def unrolled(x):
        js.get_variable("calls", [], jnp.int32, trainable=False)
        return unrolled_layers(counted(js.get_variable_scope()))(x)

    assert_same_program(lifted, unrolled, XS[0])


def test_batch_norm_statistics_in_a_scan_are_carried_as_unrolled():
    def step(h, x):
        with js.variable_scope("cell", reuse=js.AUTO_REUSE):
            return normalized_layer(h + x), None

    def lifted(xs):
        return js.scan(step, jnp.zeros((8, D)), xs)[0]

    def unrolled(xs):
        h = jnp.zeros((8, D))
        for x in xs:
            h = step(h, x)[0]
        return h

    assert_same_program(lifted, unrolled, BATCH)


# --- js.layer_stack inside other lifted bodies; per-layer inputs and outputs --------


def residual(x, scale):
    w = js.get_variable("w", [D, D])
    return x + scale * jnp.tanh(x @ w)


def cached_layer(x, cache):
    """A layer with a per-layer input and output: it adds its input to a
    per-layer running sum, which it returns."""
    w = js.get_variable("w", [D, D])
    cache = cache + x
    return jnp.tanh(x @ w + cache), cache


def test_per_layer_inputs_and_outputs_are_each_layers_slice():
    caches = np.arange(LAYERS * 2 * D, dtype=np.float32).reshape(LAYERS, 2, D) / 10

    def lifted(x, caches):
        stack = js.layer_stack(LAYERS, with_per_layer_inputs=True)
        return stack(cached_layer)(x, caches)

    def unrolled(x, caches):
        outs = []
        for i in range(LAYERS):
            with js.variable_scope(f"layer_{i}"):
                x, out = cached_layer(x, caches[i])
            outs.append(out)
        return x, jnp.stack(outs)

    params, _, out, _ = run(lifted, XS[0], caches)
    expected = run(unrolled, XS[0], caches)
    same(params, js.stack_layers(expected[0]))
    same(out, expected[2])


def decoding(loop):
    """Decoding loops around a layer stack with per-layer caches."""

    def step(x, caches):
        with js.variable_scope("layers"):
            stack = js.layer_stack(LAYERS, with_per_layer_inputs=True)
            return stack(cached_layer)(x, caches)

    def model(x):
        caches = jnp.zeros((LAYERS, *x.shape))
        if loop == "scan":
            return js.scan(lambda c, _: (step(*c), None), (x, caches), None, length=T)[0]
        if loop == "while_loop":

            def body(state):
                i, x, caches = state
                return (i + 1, *step(x, caches))

            return js.while_loop(lambda s: s[0] < T, body, (0, x, caches))[1:]
        return js.cond(x[0, 0] > -100.0, lambda c: step(*c), lambda c: c, (x, caches))

    return model


def unrolled_decoding(loop):
    steps = 1 if loop == "cond" else T

    def model(x):
        caches = [jnp.zeros(x.shape)] * LAYERS
        for t in range(steps):
            for i in range(LAYERS):
                with js.variable_scope(f"layers/layer_{i}", reuse=t > 0):
                    x, caches[i] = cached_layer(x, caches[i])
        return x, jnp.stack(caches)

    return model


@pytest.mark.parametrize("loop", ["scan", "while_loop", "cond"])
def test_layer_stack_runs_inside_lifted_loops_as_the_unrolled_program(loop):
    params, _, out, _ = run(decoding(loop), XS[0])
    expected = run(unrolled_decoding(loop), XS[0])
    same(params["layers"], js.stack_layers(expected[0]["layers"]))
    np.testing.assert_allclose(out[0], expected[2][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1], expected[2][1], rtol=1e-6, atol=1e-6)


def test_layer_stack_runs_in_successive_loops_as_the_unrolled_program():
    # A decode in segments: the stack in two loops, the second reusing the
    # variables the first obtained (in init and in apply).
    def model(x):
        def body(state):
            i, x, caches = state
            with js.variable_scope("layers", reuse=js.AUTO_REUSE):
                stack = js.layer_stack(LAYERS, with_per_layer_inputs=True)
                return (i + 1, *stack(cached_layer)(x, caches))

        state = js.while_loop(lambda s: s[0] < 1, body, (0, x, jnp.zeros((LAYERS, *x.shape))))
        return js.while_loop(lambda s: s[0] < T, body, state)[1:]

    params, _, out, _ = run(model, XS[0])
    expected = run(unrolled_decoding("while_loop"), XS[0])
    same(params["layers"], js.stack_layers(expected[0]["layers"]))
    np.testing.assert_allclose(out[0], expected[2][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1], expected[2][1], rtol=1e-6, atol=1e-6)


def test_layer_stack_inside_a_loop_applies_trained_params():
    f = js.transform(decoding("while_loop"))
    params = f.init(0, XS[0])
    params = jax.tree.map(lambda w: w * 0.5, params)
    unrolled = js.transform(unrolled_decoding("while_loop"))
    flat = {f"layers/layer_{i}/w": params["layers"]["w"][i] for i in range(LAYERS)}
    out = jax.jit(f.apply)(params, XS[0])
    expected = unrolled.apply(js.unflatten(flat), XS[0])
    np.testing.assert_allclose(out[0], expected[0], rtol=1e-6, atol=1e-6)


def test_layer_stack_state_inside_a_scan_is_per_layer_and_carried_over_time():
    def lifted(xs):
        def step(h, x):
            with js.variable_scope("stack"):
                return js.layer_stack(LAYERS)(normalized_layer)(h + x), None

        return js.scan(step, jnp.zeros((8, D)), xs)[0]

    _, state, _, new_state = run(lifted, BATCH)
    moving = new_state["stack"]["bn"]["moving_mean"]
    assert moving.shape == (LAYERS, D)
    # T updates with momentum 0.99 from zeros: every layer moved, each its own way.
    assert (np.abs(np.asarray(moving)) > 0).all()
    assert len({tuple(np.asarray(row)) for row in moving}) == LAYERS


# --- a layer body of the wrong shape: a typed error -----------------------------------


@pytest.mark.parametrize(
    "body, per_layer, words",
    [
        (lambda x: jnp.concatenate([x, x], -1), False, r"given float32\[2, 3\].*returned"),
        (lambda x: x.astype(jnp.int32), False, "int32"),
        (lambda x: (x, x), False, "must return x"),
        (lambda x, c: x, True, r"must return \(x, out_i\)"),
        (lambda x, c: (x[0], c), True, "must return"),
    ],
    ids=["grows", "dtype", "pair_without_per_layer_inputs", "no_pair", "carry_shape"],
)
def test_a_layer_body_of_the_wrong_shape_is_a_layer_body_error(body, per_layer, words):
    def model(x):
        stack = js.layer_stack(2, with_per_layer_inputs=per_layer)
        return stack(body)(x, jnp.zeros((2, 5))) if per_layer else stack(body)(x)

    with pytest.raises(errors.LayerBodyError, match=words) as info:
        js.transform(model).init(0, XS[0])
    assert isinstance(info.value, TypeError)


def test_a_per_layer_input_without_the_layer_axis_is_a_layer_body_error():
    def model(x):
        return js.layer_stack(3, with_per_layer_inputs=True)(cached_layer)(x, jnp.zeros((2, D)))

    with pytest.raises(errors.LayerBodyError, match=r"shape \(2, 3\).*leading axis of size 3"):
        js.transform(model).init(0, XS[0])


def test_per_layer_inputs_outside_a_transform_are_a_plain_scan():
    caches = jnp.ones((LAYERS, 2, D))
    x, outs = js.layer_stack(LAYERS, with_per_layer_inputs=True)(lambda x, c: (x + c, c * 2.0))(
        jnp.zeros((2, D)), caches
    )
    np.testing.assert_array_equal(x, 3.0)
    np.testing.assert_array_equal(outs, 2.0)
