"""The misuse catalogue's shared parts (issue 8): every bad input fails loudly
and precisely.

Each ``test_misuse_*.py`` file holds a ``CATALOGUE`` of bad inputs: a model, a
tree or a call that a user gets wrong, with the error it must raise. Two tests
run every entry (:func:`catalogue_tests`): one checks the error's type (the
``js.errors`` class and the built-in base TF1 raised), the other that the
message names the variable path (or the scope, or the function misused, where
no variable is involved) and the fix. Programs whose error is the same in
``init`` and ``apply`` run through both, ``apply`` jitted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import pytest

import jaxscope as js
from jaxscope import errors


@dataclasses.dataclass(frozen=True)
class Misuse:
    """One bad input and the error it must raise."""

    error: type[Exception]
    base: type[Exception]
    words: tuple[str, ...]  # the path (or what is misused) and the fix
    triggers: tuple[Callable[[], object], ...]
    bug: str | None = None  # the library raises no error, or the wrong type
    message_bug: str | None = None  # right type, message lacks a word


def _transform(fn, stateful=False, check_unused=False):
    make = js.transform_with_state if stateful else js.transform
    return make(fn, check_unused=check_unused)


def in_init(fn, *args, stateful=False):
    return lambda: _transform(fn, stateful).init(0, *args)


def in_apply(fn, tree, *args, stateful=False, check_unused=False, jit=True):
    """``apply`` on ``tree`` (``(params, state)`` when stateful), jitted
    unless the tree holds leaves that jit would turn into arrays."""
    f = _transform(fn, stateful, check_unused)
    apply = jax.jit(f.apply) if jit else f.apply
    trees = tree if stateful else (tree,)
    return lambda: apply(*trees, *args)


def in_both(fn, tree, *args, stateful=False):
    return (in_init(fn, *args, stateful=stateful), in_apply(fn, tree, *args, stateful=stateful))


def case(error, base, words, *triggers, bug=None, message_bug=None):
    return Misuse(error, base, tuple(words), tuple(triggers), bug, message_bug)


# --- Models used by entries of several files ------------------------------------------------


def dense_layer(x):
    with js.variable_scope("dense"):
        w = js.get_variable("kernel", [x.shape[-1], 2])
        b = js.get_variable("bias", [2], initializer=js.initializers.zeros)
    return x @ w + b


X = jnp.ones((1, 3))
DENSE = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}


def vector(x):
    with js.variable_scope("dense"):
        return x @ js.get_variable("w", [2])


def with_state():
    with js.variable_scope("bn"):
        w = js.get_variable("w", [2])
        count = js.get_variable("count", [], jnp.int32, trainable=False)
    return w, count


STATE_TREES = ({"bn": {"w": jnp.ones(2)}}, {"bn": {"count": jnp.zeros((), jnp.int32)}})


def captured_scope(name="enc"):
    """A scope captured in a call that has ended."""
    captured = []

    def model():
        with js.variable_scope(name) as scope:
            js.get_variable("w", [1])
        captured.append(scope)

    js.transform(model).init(0)
    return captured[0]


def reenter_stale():
    stale = captured_scope()

    def model():
        with js.variable_scope(stale, reuse=True):
            return js.get_variable("w", [1])

    return js.transform(model).init(0)


def stale_get_variable():
    stale = captured_scope()
    return js.transform(lambda: stale.get_variable("w", [1])).init(0)


def stale_root_scope():
    captured = []
    js.transform(lambda: captured.append(js.get_variable_scope())).init(0)

    def model():
        with js.variable_scope(captured[0]):
            pass

    return js.transform(model).init(0)


def outer_scope_in_nested_call():
    def outer():
        with js.variable_scope("outer") as scope:
            return js.transform(lambda: scope.get_variable("w", [1])).init(0)

    return js.transform(outer).init(0)


def with_mesh(fn):
    def run():
        with jax.set_mesh(jax.make_mesh((1,), ("data",))):
            return js.transform(fn).init(0)

    return run


def _raw(transform):
    """A model creating ``rnn/cell/w`` inside the raw JAX ``transform``."""

    def make(x):
        with js.variable_scope("rnn/cell"):
            return transform(x)

    return make


RAW = {
    "scan": _raw(
        lambda x: jax.lax.scan(lambda c, xi: (c * js.get_variable("w", []), None), x, None, 2)[0]
    ),
    "vmap": _raw(lambda x: jax.vmap(lambda r: r * js.get_variable("w", []))(jnp.ones(3) * x)),
    "jit": _raw(lambda x: jax.jit(lambda r: r * js.get_variable("w", []))(x)),
    "checkpoint": _raw(lambda x: jax.checkpoint(lambda r: r * js.get_variable("w", []))(x)),
    "while_loop": _raw(
        lambda x: jax.lax.while_loop(lambda c: c < 3, lambda c: c + js.get_variable("w", []), x)
    ),
    "cond": _raw(
        lambda x: jax.lax.cond(x > 0, lambda r: r * js.get_variable("w", []), lambda r: r, x)
    ),
}
RAW_FIX = {
    "scan": "js.scan",
    "vmap": "js.vmap",
    "jit": "before entering",
    "checkpoint": "js.remat",
    "while_loop": "js.while_loop",
    "cond": "js.cond",
}


def leave_open(enter):
    def model():
        enter()
        return js.get_variable("w", [1])

    return model


def exit_out_of_order(inner):
    def model():
        outer = js.variable_scope("outer")
        outer.__enter__()
        inner().__enter__()
        outer.__exit__(None, None, None)

    return model


def assigns(get, value, name="c"):
    def model():
        with js.variable_scope("bn"):
            get()
            js.assign(name, value())

    return model


def gv(*args, **kwargs):
    """A model calling ``get_variable`` once under scope ``enc``."""

    def model():
        with js.variable_scope("enc"):
            return js.get_variable(*args, **kwargs)

    return model


def scoped(*args, **kwargs):
    """A model getting ``w`` inside ``variable_scope(*args, **kwargs)``."""

    def model():
        with js.variable_scope(*args, **kwargs):
            return js.get_variable("w", [1])

    return model


def run_twice(first, second):
    """A model running ``first`` then ``second``."""

    def model():
        first()
        return second()

    return model


def in_scope(scope_args, get):
    """A model running ``get`` inside ``variable_scope`` opened with
    ``scope_args``, made by :func:`scope_of`."""

    def model():
        with js.variable_scope(*scope_args[0], **scope_args[1]):
            return get()

    return model


def scope_of(*args, **kwargs):
    return args, kwargs


def created_then_reused(reuse_kwargs, **get_kwargs):
    """Creates ``enc/w`` of shape (2,), then asks for it again."""

    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [2])
        with js.variable_scope("enc", **reuse_kwargs):
            return js.get_variable("w", **get_kwargs)

    return model


def get_with_initializer(init, shape=(2,)):
    return gv("w", list(shape), initializer=init)


def assign_in_while_condition(x):
    with js.variable_scope("bn"):
        js.get_variable("n", [], trainable=False)

        def below_three(i):
            js.assign("n", i)
            return i < 3

        return js.while_loop(below_three, lambda i: i + 1.0, x)


def assign_per_example_in_vmap(xs):
    with js.variable_scope("bn"):
        js.get_variable("n", [], trainable=False)
        return js.vmap(lambda x: js.assign("n", x))(xs)


def captured_reusing_scope():
    with js.variable_scope("enc", reuse=True) as scope:
        pass
    return scope.get_variable("w", [1])


def assign_in_raw_scan(xs):
    with js.variable_scope("bn"):
        n = js.get_variable("n", [], trainable=False)

        def step(carry, x):
            js.assign("n", n + x)
            return carry, None

        return jax.lax.scan(step, 0.0, xs)[0]


def dropout():
    with js.variable_scope("drop"):
        return jax.random.bernoulli(js.next_rng_key(), 0.5, (2,))


def generator_model():
    yield js.get_variable("w", [1])


def stack_in_stack(x):
    inner = js.layer_stack(2)(lambda h: h * js.get_variable("w", [1]))
    return js.layer_stack(3)(inner)(x)


def growing_layer(x):
    return js.layer_stack(2)(lambda h: jnp.concatenate([h, h]))(x)


FIX_REUSE = ("reuse=True", "js.AUTO_REUSE")
V = ValueError
R = RuntimeError
ENC_W = {"enc": {"w": jnp.zeros(2)}}
ENC_W1 = {"enc": {"w": jnp.zeros(1)}}


def _raise_all(misuse: Misuse) -> list[Exception]:
    """Runs every trigger; each must raise ``misuse.error``."""
    raised = []
    for trigger in misuse.triggers:
        with pytest.raises(misuse.error) as info:
            trigger()
        raised.append(info.value)
    return raised


def catalogue_tests(catalogue: dict[str, Misuse]) -> tuple[Callable, Callable]:
    """The two tests every entry of ``catalogue`` runs: its error's type (the
    ``js.errors`` class and the built-in base), and the words its message must
    hold. A test file binds them to ``test_...`` names."""
    type_params = [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [],
        )
        for name, c in catalogue.items()
    ]
    message_params = [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=c.bug or c.message_bug)]
            if c.bug or c.message_bug
            else [],
        )
        for name, c in catalogue.items()
    ]

    @pytest.mark.parametrize("name", type_params)
    def raises_its_error_type_and_builtin_base(name):
        misuse = catalogue[name]
        for error in _raise_all(misuse):
            assert isinstance(error, misuse.base) and isinstance(error, errors.ScopeError)

    @pytest.mark.parametrize("name", message_params)
    def message_names_the_path_and_the_fix(name):
        misuse = catalogue[name]
        for error in _raise_all(misuse):
            message = str(error)
            missing = [word for word in misuse.words if word not in message]
            assert not missing, f"{missing} not in: {message}"

    return raises_its_error_type_and_builtin_base, message_names_the_path_and_the_fix
