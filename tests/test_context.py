"""The per-call context (``jaxscope.context``): one frame per ``init`` or
``apply`` call, on a thread-local stack.

A call pushes its frame and pops it when it ends, in order, also when the
model raises; nothing of a call is visible after it, or from another thread.
"""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope._src import context


class _Abort(BaseException):
    """Not an ``Exception``: frames must pop on any way out of the model."""


def _model_that_raises(error):
    def model():
        with js.variable_scope("inner"):
            js.get_variable("w", [1])
            raise error

    return js.transform(model)


def test_no_frame_is_active_outside_a_call():
    assert context.current_or_none() is None
    with pytest.raises(js.errors.NoTransformError, match="js.thing"):
        context.current("js.thing")


def test_a_frame_is_active_only_while_a_call_runs():
    frames = []

    def model():
        frames.append(context.current())
        return js.get_variable("w", [1])

    f = js.transform(model)
    params = f.init(0)
    f.apply(params)
    assert len(frames) == 2 and frames[0] is not frames[1]
    assert context.current_or_none() is None


def test_a_finished_calls_frame_is_marked_dead():
    frames = []

    def model():
        frames.append(context.current())

    js.transform(model).init(0)
    assert not frames[0].alive


def test_a_nested_call_pushes_its_own_frame_and_pops_back_to_the_callers():
    seen = []
    inner = js.transform(lambda: seen.append(context.current()))

    def outer():
        mine = context.current()
        inner.init(0)
        seen.append(context.current())
        return mine

    outer_frames = []
    js.transform(lambda: outer_frames.append(outer())).init(0)
    inner_frame, back = seen
    assert inner_frame is not outer_frames[0]
    assert back is outer_frames[0]


@pytest.mark.parametrize("error", [KeyError("boom"), _Abort()], ids=["Exception", "BaseException"])
def test_a_call_that_raises_pops_its_frame(error):
    with pytest.raises(type(error)):
        _model_that_raises(error).init(0)
    assert context.current_or_none() is None


def test_a_nested_call_that_raises_pops_back_to_the_callers_frame_and_scope():
    failing = _model_that_raises(KeyError("boom"))
    seen = []

    def outer():
        with js.variable_scope("outer"):
            mine = context.current()
            with pytest.raises(KeyError):
                failing.init(0)
            seen.append((context.current() is mine, js.get_variable_scope().name))
            return js.get_variable("w", [1])

    params = js.transform(outer).init(0)
    assert seen == [(True, "outer")]
    assert js.flatten(params).keys() == {"outer/w"}  # nothing of the failed call


def test_three_nested_calls_that_raise_pop_every_frame():
    innermost = _model_that_raises(KeyError("deep"))
    middle = js.transform(lambda: innermost.init(0))
    outer = js.transform(lambda: middle.init(0))
    with pytest.raises(KeyError, match="deep"):
        outer.init(0)
    assert context.current_or_none() is None


def test_the_call_after_a_raising_call_starts_from_an_empty_context():
    with pytest.raises(KeyError):
        _model_that_raises(KeyError("boom")).init(0)
    names = []

    def model():
        names.append(js.get_variable_scope().name)
        with js.variable_scope("inner"):
            return js.get_variable("w", [1])  # no "already exists": a fresh call

    js.transform(model).init(0)
    assert names == [""]


def test_a_call_sees_only_its_own_regularization_losses():
    def model():
        js.get_variable("w", [2], initializer=js.initializers.ones, regularizer=jnp.sum)
        return js.get_regularization_loss()

    f = js.transform(model)
    params = f.init(0)
    assert float(f.apply(params)) == 2.0
    assert float(f.apply(params)) == 2.0  # not 4.0: nothing kept from the last call


def test_a_nested_call_does_not_add_to_the_callers_regularization_losses():
    inner = js.transform(
        lambda: js.get_variable("w", [2], initializer=jnp.ones(2) * 5, regularizer=jnp.sum)
    )

    def outer():
        js.get_variable("w", [2], initializer=js.initializers.ones, regularizer=jnp.sum)
        inner.init(0)
        return js.get_regularization_loss()

    assert float(js.transform(outer).apply({"w": jnp.ones(2)})) == 2.0


def test_rng_streams_start_afresh_in_every_call():
    def model():
        return js.next_rng_key()

    f = js.transform(model)
    keys = [jax.random.key_data(f.apply({}, rng=jax.random.key(0))) for _ in range(2)]
    np.testing.assert_array_equal(keys[0], keys[1])


def test_a_thread_started_inside_a_call_sees_no_transform():
    errors_in_thread = []

    def probe():
        try:
            js.get_variable_scope()
        except js.errors.NoTransformError as error:
            errors_in_thread.append(error)
        errors_in_thread.append(context.current_or_none())

    def model():
        with js.variable_scope("main_thread_only"):
            thread = threading.Thread(target=probe)
            thread.start()
            thread.join()

    js.transform(model).init(0)
    assert isinstance(errors_in_thread[0], js.errors.NoTransformError)
    assert errors_in_thread[1] is None


def test_a_call_in_one_thread_does_not_see_a_call_running_in_another():
    inside = threading.Event()
    release = threading.Event()
    seen = []

    def slow_model():
        with js.variable_scope("slow"):
            inside.set()
            release.wait(timeout=20)
            seen.append(("slow", js.get_variable_scope().name))
            return js.get_variable("w", [1])

    def fast_model():
        seen.append(("fast", js.get_variable_scope().name))
        return js.get_variable("w", [1])

    results = {}
    thread = threading.Thread(target=lambda: results.update(slow=js.transform(slow_model).init(0)))
    thread.start()
    try:
        assert inside.wait(timeout=20)
        results["fast"] = js.transform(fast_model).init(0)  # while slow's frame is active
    finally:
        release.set()
        thread.join()
    assert seen == [("fast", ""), ("slow", "slow")]
    assert js.flatten(results["slow"]).keys() == {"slow/w"}
    assert js.flatten(results["fast"]).keys() == {"w"}
