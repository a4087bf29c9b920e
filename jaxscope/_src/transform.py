"""``transform``: a model function becomes a pure ``init``/``apply`` pair.

``init`` runs the function once and returns the variables it created;
``apply`` runs it once against a given tree. Both are pure functions of their
arguments, so they compose with ``jax.jit``, ``jax.grad``, ``jax.vmap`` and
``jax.eval_shape``; under ``jit`` the scoping machinery leaves nothing in the
compiled program but the model's own math.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from jaxscope._src import context, errors, trees
from jaxscope._src import rng as rng_lib
from jaxscope._src.context import Frame, Mode, VariableRecord
from jaxscope._src.scopes import VariableScope

Params = dict
State = dict


@dataclasses.dataclass(frozen=True)
class Transformed:
    """The ``init``/``apply`` pair of a model without state.

    ``init(rng, *args, **kwargs) -> params``;
    ``apply(params, *args, rng=None, **kwargs) -> out``.
    Unpacks as ``init, apply = js.transform(fn)``.
    """

    init: Callable[..., Params]
    apply: Callable[..., Any]
    fn: Callable = dataclasses.field(repr=False, compare=False)

    def __iter__(self) -> Iterator[Callable]:
        return iter((self.init, self.apply))


@dataclasses.dataclass(frozen=True)
class TransformedWithState:
    """The ``init``/``apply`` pair of a model with state.

    ``init(rng, *args, **kwargs) -> (params, state)``;
    ``apply(params, state, *args, rng=None, **kwargs) -> (out, new_state)``.
    """

    init: Callable[..., tuple[Params, State]]
    apply: Callable[..., tuple[Any, State]]
    fn: Callable = dataclasses.field(repr=False, compare=False)

    def __iter__(self) -> Iterator[Callable]:
        return iter((self.init, self.apply))


def _check_tree(tree: Any, what: str, fix: str) -> Mapping:
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise errors.InvalidParamsError(
            function="apply",
            argument=what,
            problem=f"must be the {what} tree (a dict) returned by init, but got a "
            f"{type(tree).__name__}",
            fix=fix,
        )
    return tree


def _run(
    fn: Callable,
    mode: Mode,
    rng: Any,
    allow_state: bool,
    args: tuple,
    kwargs: dict,
    params: Mapping | None = None,
    state: Mapping | None = None,
) -> tuple[Any, Frame]:
    frame = Frame(
        mode=mode, rng=rng_lib.as_key(rng), allow_state=allow_state, params=params, state=state
    )
    frame.current_scope = VariableScope(frame, "")  # the root scope
    context.push(frame)
    try:
        out = fn(*args, **kwargs)
        if inspect.isgenerator(out) or inspect.isawaitable(out) or inspect.isasyncgen(out):
            _refuse_lazy_model(fn, out)
    finally:
        context.pop(frame)
        open_scopes = list(frame.scope_stack)
        for entry in reversed(open_scopes):  # leave JAX's op-name stack as found
            entry._close_op_scope()
    if open_scopes:
        raise errors.ScopeNestingError(
            function=getattr(fn, "__name__", "fn"),
            still_open=[entry._describe() for entry in open_scopes],
        )
    return out, frame


def _refuse_lazy_model(fn: Callable, out: Any = None) -> None:
    """A generator or coroutine function would return before its body ran:
    ``init`` would find no variables. Raise at once instead."""
    if out is None:
        if not (
            inspect.isgeneratorfunction(fn)
            or inspect.iscoroutinefunction(fn)
            or inspect.isasyncgenfunction(fn)
        ):
            return
        kind = "a generator or coroutine function"
    else:
        if inspect.iscoroutine(out):
            out.close()  # never awaited: close it quietly
        kind = f"a function returning a {type(out).__name__}"
    raise errors.ArgumentTypeError(
        function=f"js.transform({getattr(fn, '__name__', fn)!r})",
        problem=f"the model function is {kind}, so its body (and every get_variable in it) "
        "would not run while init or apply runs",
        fix="make the model an ordinary function that computes and returns its output "
        "(collect values in a list instead of yielding them)",
    )


def _wraps(fn: Callable) -> Callable[[Callable], Callable]:
    """Copies ``fn``'s name and docs, but not its signature: init and apply
    take other arguments (``jax.jit(..., static_argnames=...)`` reads them)."""

    def decorate(wrapper: Callable) -> Callable:
        functools.update_wrapper(wrapper, fn)
        del wrapper.__wrapped__
        return wrapper

    return decorate


def _initial_trees(frame: Frame) -> tuple[Params, State]:
    """The initial values as ``(params, state)``, shaped by the call's tree
    of names: one visit per name component, however deep the names."""
    records = frame.records
    params: Params = {}
    state: State = {}
    visited = []  # (params dict, state dict, parents', key), parents first
    stack = [(frame.names, params, state)]
    while stack:
        names, p, s = stack.pop()
        for key, child in names.items():
            if type(child) is str:
                record = records[child]
                (p if record.trainable else s)[key] = record.initial_value
            else:
                p[key], s[key] = child_p, child_s = {}, {}
                visited.append((child_p, child_s, p, s, key))
                stack.append((child, child_p, child_s))
    for child_p, child_s, p, s, key in reversed(visited):  # drop the empty ones
        if not child_p:
            del p[key]
        if not child_s:
            del s[key]
    return params, state


def _updated_state(frame: Frame, state: Mapping) -> State:
    updates = {
        r.name: r.value
        for r in frame.records.values()
        if not r.trainable and r.value is not r.initial_value
    }
    return trees.replace_paths(state, updates) if updates else dict(state)


def _check_unused(frame: Frame, trees_given: tuple[Mapping, ...]) -> None:
    unused = [
        name for tree in trees_given for name in trees.flatten(tree) if name not in frame.records
    ]
    if unused:
        raise errors.UnusedVariableError(paths=unused)


def transform(fn: Callable, *, check_unused: bool = False) -> Transformed:
    """Turns a model function that calls ``get_variable`` into ``init``/``apply``.

    >>> def model(x):
    ...     with js.variable_scope("dense"):
    ...         w = js.get_variable("w", [x.shape[-1], 2])
    ...     return x @ w
    >>> f = js.transform(model)
    >>> x = jnp.ones((1, 3))
    >>> params = f.init(jax.random.key(0), x)
    >>> jax.jit(f.apply)(params, x).shape
    (1, 2)

    ``rng`` (to ``init``, or ``apply(..., rng=...)``) is a JAX PRNG key, a raw
    uint32 key or an int seed. ``fn`` may not create ``trainable=False``
    variables; use :func:`transform_with_state` for those.

    With ``check_unused=True``, ``apply`` raises ``UnusedVariableError`` if the
    given tree holds variables the model never obtained (off by default: a
    tree may legitimately carry more, e.g. for a sub-model).

    ``fn`` must be an ordinary function: a generator or ``async`` function
    is an ``ArgumentTypeError``, since its body would not run in ``init``.
    """
    _refuse_lazy_model(fn)

    @_wraps(fn)
    def init(rng: Any, *args, **kwargs) -> Params:
        _, frame = _run(fn, Mode.INIT, rng, False, args, kwargs)
        return _initial_trees(frame)[0]

    @_wraps(fn)
    def apply(params: Params, *args, rng: Any = None, **kwargs) -> Any:
        params = _check_tree(
            params, "params", "call f.apply(params, *args) with init's params first"
        )
        out, frame = _run(fn, Mode.APPLY, rng, False, args, kwargs, params=params)
        if check_unused:
            _check_unused(frame, (params,))
        return out

    return Transformed(init, apply, fn)


def transform_with_state(fn: Callable, *, check_unused: bool = False) -> TransformedWithState:
    """Like :func:`transform`, for models with ``trainable=False`` variables.

    ``init`` returns ``(params, state)``, the initial values (assignments made
    while ``init`` runs are not returned); ``apply(params, state, ...)``
    returns ``(out, new_state)`` with the values set by ``js.assign``.
    ``check_unused`` is as in :func:`transform`, over both trees, and
    ``fn`` must be an ordinary function, as there.

    >>> def model(x):
    ...     count = js.get_variable("count", [], jnp.int32, trainable=False)
    ...     js.assign("count", count + 1)
    ...     return x
    >>> f = js.transform_with_state(model)
    >>> params, state = f.init(0, 1.0)
    >>> _, state = f.apply(params, state, 1.0)
    >>> int(state["count"])
    1
    """
    _refuse_lazy_model(fn)

    @_wraps(fn)
    def init(rng: Any, *args, **kwargs) -> tuple[Params, State]:
        _, frame = _run(fn, Mode.INIT, rng, True, args, kwargs)
        return _initial_trees(frame)

    @_wraps(fn)
    def apply(params: Params, state: State, *args, rng: Any = None, **kwargs) -> tuple[Any, State]:
        params = _check_tree(params, "params", "call f.apply(params, state, *args)")
        state = _check_tree(
            state,
            "state",
            "call f.apply(params, state, *args) with both trees from init",
        )
        out, frame = _run(fn, Mode.APPLY, rng, True, args, kwargs, params=params, state=state)
        if check_unused:
            _check_unused(frame, (params, state))
        return out, _updated_state(frame, state)

    return TransformedWithState(init, apply, fn)


def variable_records(
    f: Transformed | TransformedWithState, rng: Any, *args, **kwargs
) -> dict[str, VariableRecord]:
    """The records of every variable ``f.init`` creates, by full name, with
    abstract values (``jax.ShapeDtypeStruct``): computed under
    ``jax.eval_shape``, so no parameter memory is used."""
    allow_state = isinstance(f, TransformedWithState)
    found: dict[str, VariableRecord] = {}

    def run(rng, args, kwargs):
        _, frame = _run(f.fn, Mode.INIT, rng, allow_state, args, kwargs)
        found.update(frame.records)
        return _initial_trees(frame)

    shapes = jax.eval_shape(run, rng, args, kwargs)
    flat = {**trees.flatten(shapes[0]), **trees.flatten(shapes[1])}
    return {
        name: dataclasses.replace(record, value=flat[name], initial_value=flat[name])
        for name, record in found.items()
    }
