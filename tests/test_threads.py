"""Concurrency (issue 8): a call's scopes are thread-local.

Several threads run ``init`` and ``apply`` of different models at the same
time; barriers inside the models make every thread stand inside its own
scopes while the others create, reuse and number theirs. Each thread must see
only its own scopes, names and default-name numbering, and get exactly the
result a run on its own gives.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import errors

THREADS = 4
TIMEOUT = 60  # seconds a barrier waits before the test fails instead of hanging


def model_for(index: int, meet=lambda: None, seen: list | None = None):
    """Model ``index``: a scope of its own with default-named layers, every
    step separated by ``meet()`` so that threads interleave there."""
    seen = [] if seen is None else seen
    width = index + 2

    def model(x):
        with js.variable_scope(f"model{index}"):
            meet()
            seen.append(js.get_variable_scope().name)
            for _ in range(3):
                with js.variable_scope(None, default_name="layer"):
                    meet()
                    seen.append(js.get_variable_scope().name)
                    w = js.get_variable("w", [width, width])
                    meet()
                    x = jnp.tanh(x @ w)
            with js.variable_scope("layer", reuse=True):
                meet()
                seen.append(js.get_variable_scope().name)
                x = x @ js.get_variable("w", [width, width])
        return x

    return model


def expected_names(index: int) -> list[str]:
    scope = f"model{index}"
    return [scope, f"{scope}/layer", f"{scope}/layer_1", f"{scope}/layer_2", f"{scope}/layer"]


def inputs(index: int) -> jax.Array:
    return jnp.ones((1, index + 2))


_barriers: list[threading.Barrier] = []


def run_in_threads(task, n=THREADS):
    """``task(i)`` in ``n`` threads at once; returns the results in order.
    A task that fails breaks the barrier, so the others fail at once rather
    than wait for the timeout."""

    def guarded(i):
        try:
            return task(i)
        except BaseException:
            for barrier in _barriers:
                barrier.abort()
            raise

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(guarded, range(n)))


def assert_bit_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


@pytest.fixture
def meet():
    """A rendezvous of all the threads of a test."""
    barrier = threading.Barrier(THREADS, timeout=TIMEOUT)
    _barriers.append(barrier)
    yield barrier.wait
    _barriers.remove(barrier)


def test_threads_running_init_never_see_each_others_scopes(meet):
    seen = [[] for _ in range(THREADS)]

    def task(i):
        return js.transform(model_for(i, meet, seen[i])).init(i, inputs(i))

    results = run_in_threads(task)
    for i, params in enumerate(results):
        assert seen[i] == expected_names(i)
        assert set(js.flatten(params)) == {
            f"model{i}/{layer}/w" for layer in ("layer", "layer_1", "layer_2")
        }


def test_threads_running_init_get_the_params_of_a_run_on_its_own(meet):
    results = run_in_threads(lambda i: js.transform(model_for(i, meet)).init(i, inputs(i)))
    for i, params in enumerate(results):
        assert_bit_identical(params, js.transform(model_for(i)).init(i, inputs(i)))


def test_threads_running_apply_never_see_each_others_scopes(meet):
    params = [js.transform(model_for(i)).init(i, inputs(i)) for i in range(THREADS)]
    seen = [[] for _ in range(THREADS)]

    def task(i):
        return js.transform(model_for(i, meet, seen[i])).apply(params[i], inputs(i))

    outputs = run_in_threads(task)
    for i, out in enumerate(outputs):
        assert seen[i] == expected_names(i)
        assert_bit_identical(out, js.transform(model_for(i)).apply(params[i], inputs(i)))


def test_threads_tracing_jitted_apply_never_see_each_others_scopes(meet):
    params = [js.transform(model_for(i)).init(i, inputs(i)) for i in range(THREADS)]
    seen = [[] for _ in range(THREADS)]

    def task(i):
        return jax.jit(js.transform(model_for(i, meet, seen[i])).apply)(params[i], inputs(i))

    outputs = run_in_threads(task)
    for i, out in enumerate(outputs):
        assert seen[i] == expected_names(i)
        np.testing.assert_allclose(
            out, js.transform(model_for(i)).apply(params[i], inputs(i)), rtol=1e-6
        )


def test_threads_mixing_init_and_apply_of_one_model_do_not_interfere(meet):
    f = js.transform(model_for(0, meet))
    params = js.transform(model_for(0)).init(0, inputs(0))

    def task(i):
        return f.init(i, inputs(0)) if i % 2 else f.apply(params, inputs(0))

    results = run_in_threads(task)
    for i, result in enumerate(results):
        if i % 2:
            assert_bit_identical(result, js.transform(model_for(0)).init(i, inputs(0)))
        else:
            assert_bit_identical(result, js.transform(model_for(0)).apply(params, inputs(0)))


def meets_per_call() -> int:
    count = []
    js.transform(model_for(0, lambda: count.append(1))).init(0, inputs(0))
    return len(count)


def test_a_thread_whose_model_raises_midway_leaves_the_others_undisturbed(meet):
    meets_left = meets_per_call() - 2

    def task(i):
        model = model_for(i, meet)
        if i == 0:

            def model(x, inner=model):  # noqa: F811 - the failing variant of model 0
                with js.variable_scope("broken"):
                    meet()
                    js.get_variable("w", [1])
                    meet()
                    js.get_variable("w", [1])  # VariableExistsError
                return inner(x)

        try:
            return js.transform(model).init(i, inputs(i))
        except errors.VariableExistsError as error:
            for _ in range(meets_left):  # keep meeting the others, so they finish
                meet()
            return error

    results = run_in_threads(task)
    assert isinstance(results[0], errors.VariableExistsError)
    assert "broken/w" in str(results[0])
    for i in range(1, THREADS):
        assert_bit_identical(results[i], js.transform(model_for(i)).init(i, inputs(i)))


def test_threads_entering_one_shared_scope_object_at_once_each_get_their_own_entry(meet):
    shared = js.variable_scope("shared")  # built once, at module level in a port
    names = js.name_scope("ops")

    def model(x):
        with shared:
            meet()  # every thread is inside the shared objects at once
            with names as op_scope:
                meet()
                w = js.get_variable("w", [2])
        meet()  # and every thread has left them before any continues
        return op_scope, js.get_variable_scope().name, x * w

    def task(i):
        f = js.transform(model)
        params = f.init(i, jnp.ones(2))
        return params, f.apply(params, jnp.ones(2))

    for params, (op_scope, after, _) in run_in_threads(task):
        assert set(js.flatten(params)) == {"shared/w"}
        assert (op_scope, after) == ("shared/ops/", "")


def test_a_thread_outside_any_call_sees_no_scope_while_another_thread_is_inside_one():
    inside, done = threading.Event(), threading.Event()

    def model():
        with js.variable_scope("busy"):
            js.get_variable("w", [1])
            inside.set()
            assert done.wait(TIMEOUT)

    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(js.transform(model).init, 0)
        assert inside.wait(TIMEOUT)
        try:
            with pytest.raises(errors.NoTransformError):
                js.get_variable("w", [1])
            with pytest.raises(errors.NoTransformError):
                js.get_variable_scope()
            here = js.transform(lambda: js.get_variable_scope().name).apply({})
        finally:
            done.set()
        assert set(js.flatten(busy.result(TIMEOUT))) == {"busy/w"}
    assert here == ""


def test_a_scope_captured_in_one_thread_is_stale_in_another_threads_call():
    captured, inside, done = [], threading.Event(), threading.Event()

    def model():
        with js.variable_scope("owner") as scope:
            js.get_variable("w", [1])
            captured.append(scope)
            inside.set()
            assert done.wait(TIMEOUT)

    def thief():
        with js.variable_scope(captured[0], reuse=True):
            return js.get_variable("w", [1])

    with ThreadPoolExecutor(1) as pool:
        owner = pool.submit(js.transform(model).init, 0)
        assert inside.wait(TIMEOUT)
        try:
            with pytest.raises(errors.StaleScopeError, match="'owner'"):
                js.transform(thief).apply({"owner": {"w": jnp.ones(1)}})
        finally:
            done.set()
        owner.result(TIMEOUT)
