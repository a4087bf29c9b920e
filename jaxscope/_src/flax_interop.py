"""Flax interop: Flax modules inside jaxscope functions, and the other way.

:func:`flax_module` calls a ``flax.linen.Module`` inside a jaxscope function,
its variables mounted under the current scope (``encoder/dense/kernel``) and
obtained through ``js.get_variable``: reuse flags, custom getters,
regularizers, shardings and every check apply to them as to any variable.
:func:`to_flax` wraps a jaxscope function as a ``flax.linen.Module`` whose
``"params"`` collection is the jaxscope params tree.

Params trees are plain nested dicts of arrays on both sides, so they work
unchanged with ``flax.serialization``, ``flax.traverse_util``,
``flax.training.train_state.TrainState`` and optax.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax
import flax.linen as nn
import flax.linen.module as linen_module
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.extend.core import get_opaque_trace_state

from jaxscope._src import context, errors, trees
from jaxscope._src import rng as rng_lib
from jaxscope._src.rng import next_rng_key
from jaxscope._src.scopes import variable_scope
from jaxscope._src.transform import Transformed, TransformedWithState, transform_with_state
from jaxscope._src.variables import assign, get_variable


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _specs(tree: Any) -> Any:
    """Arrays become ``ShapeDtypeStruct``; other leaves (flags) stay."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) if _is_array(x) else x,
        tree,
    )


def _zeros(tree: Any) -> Any:
    return jax.tree.map(
        lambda x: jnp.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x, tree
    )


def _flax_init(module: nn.Module, key: jax.Array, streams: Sequence[str], specs: Any) -> dict:
    """``module.init`` on zeros of the inputs' shapes: initial values depend
    on the shapes and the key only, never on the data."""
    keys = {"params": key}
    for index, stream in enumerate(streams):
        keys[stream] = jax.random.fold_in(key, index + 1)
    args, kwargs = _zeros(specs)
    return flax.core.unfreeze(module.init(keys, *args, **kwargs))


class _Initializer:
    """The initial values of a mounted module, made by one ``module.init``
    per trace (the variables' initializers all read it).

    The flax key is the variable key of the mount path (the call's rng and
    the full scope name), so a module's initial values do not depend on other
    variables. Inside ``js.layer_stack`` each variable's own key is used
    instead, so that the layers differ.
    """

    def __init__(self, module, streams, specs, frame, mount):
        self.module, self.streams, self.specs = module, streams, specs
        self.frame, self.mount = frame, mount
        self.per_variable = frame.body.stack is not None
        self.cached: tuple[Any, dict] | None = None

    def variables(self, key: jax.Array) -> dict:
        if self.per_variable:
            return _flax_init(self.module, key, self.streams, self.specs)
        trace_state = get_opaque_trace_state()
        if self.cached is None or self.cached[0] != trace_state:
            mount_key = rng_lib.variable_key(self.frame, self.mount)
            self.cached = (
                trace_state,
                _flax_init(self.module, mount_key, self.streams, self.specs),
            )
        return self.cached[1]

    def of(self, collection: str, path: str) -> Callable:
        def init(key, shape, dtype):
            del shape, dtype  # checked by get_variable
            return trees.lookup(self.variables(key)[collection], path)

        return init


def _mount_scope(name: str | None, default: str, reuse: Any) -> variable_scope:
    if name is not None:
        return variable_scope(name, reuse=reuse)
    if reuse:
        return variable_scope(default, reuse=reuse)
    return variable_scope(None, default_name=default)


def _check_collections(module_name: str, mount: str, structure: dict) -> None:
    seen: dict[str, str] = {}
    for collection, tree in structure.items():
        for path in trees.flatten(tree):
            if path in seen:
                raise errors.NameConflictError(
                    path=trees.join(mount, path),
                    problem=f"Flax module {module_name} has a variable {path} in both its "
                    f"'{seen[path]}' and '{collection}' collections; mounted at "
                    f"{trees.join(mount, path)} they would share one jaxscope name",
                    fix="wrap the module so that the names differ",
                )
            seen[path] = collection


def flax_module(
    module: nn.Module,
    name: str | None = None,
    *,
    reuse: Any = None,
    rngs: Sequence[str] = (),
    mutable: bool | Sequence[str] = True,
) -> Callable[..., Any]:
    """Calls a ``flax.linen.Module`` inside a jaxscope function.

    Returns ``call(*args, **kwargs)``, which runs ``module(*args, **kwargs)``
    with the module's variables mounted under ``<current scope>/<name>``:
    flax's ``params`` as trainable variables, its other collections (e.g.
    ``batch_stats``) as ``trainable=False`` state. Every variable is obtained
    with ``js.get_variable``, so scopes, reuse flags and all checks apply; in
    ``init`` the initial values are flax's, with the key derived from the
    call's rng and the full scope name.

    Args:
        module: an unbound ``flax.linen.Module``.
        name: the scope to mount it under. Default: the module's ``name``,
            else its class name in snake case (``Dense`` -> ``dense``,
            ``LSTMCell`` -> ``lstm_cell``), uniquified as TF1's layers are
            (``dense``, ``dense_1``, ...): each call creates new variables
            unless reused.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's
            variables (``None`` inherits the scope's reuse flag).
        rngs: flax rng streams (e.g. ``("dropout",)``) fed from
            ``js.next_rng_key()`` when the call has an rng.
        mutable: which non-``params`` collections the module may update
            (``True``: all); updates are stored with ``js.assign`` and come
            back as ``new_state`` from ``apply``.

    >>> import flax.linen as nn
    >>> def model(x):
    ...     with js.variable_scope("encoder"):
    ...         h = js.flax_module(nn.Dense(4))(x)
    ...     return js.flax_module(nn.Dense(2), name="out")(jax.nn.relu(h))
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((1, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'encoder': {'dense': {'bias': (4,), 'kernel': (3, 4)}}, 'out': {'bias': (2,), 'kernel': (4, 2)}}
    >>> jax.jit(f.apply)(params, jnp.ones((1, 3))).shape
    (1, 2)
    """
    streams = _checked_module(module, rngs)
    name = name if name is not None else module.name
    default = _snake_case(type(module).__name__)

    def call(*args, **kwargs):
        frame = context.current(f"js.flax_module({type(module).__name__})")
        with _mount_scope(name, default, reuse) as scope:
            specs = _specs((args, kwargs))

            def abstract_init():
                keys = {s: jax.random.key(0) for s in ("params", *streams)}
                shaped_args, shaped_kwargs = _zeros(specs)
                return flax.core.unfreeze(module.init(keys, *shaped_args, **shaped_kwargs))

            structure = jax.eval_shape(abstract_init)
            _check_collections(type(module).__name__, scope.name, structure)
            initializer = _Initializer(module, streams, specs, frame, scope.name)
            variables = _obtain(structure, initializer)
            state_collections = _state_collections(mutable, variables)
            keys = {}
            if frame.rng is not None:
                keys = {stream: next_rng_key() for stream in streams}
            try:
                result = module.apply(
                    variables, *args, rngs=keys, mutable=state_collections or False, **kwargs
                )
            except flax.errors.InvalidRngError as e:
                raise errors.MissingRNGError(
                    needed_by=f"The flax module mounted at {scope.name}",
                    cause=str(e).strip(),
                    fix="list the stream in js.flax_module(..., rngs=('dropout',)) and pass "
                    "rng=jax.random.key(...) to apply",
                ) from e
            if not state_collections:
                return result
            out, updates = result
            _assign_updates(variables, updates, state_collections)
        return out

    return call


def _checked_module(module: Any, rngs: Any) -> tuple[str, ...]:
    """``js.flax_module``'s module and streams checked; returns the streams."""
    if isinstance(module, nnx.Module):
        raise errors.FlaxModuleTypeError(
            function="js.flax_module",
            argument="module",
            problem=f"must be a flax.linen.Module, but {type(module).__name__} is a flax.nnx.Module",
            fix="use js.nnx_module(module) for NNX modules",
        )
    if not isinstance(module, nn.Module):
        raise errors.FlaxModuleTypeError(
            function="js.flax_module",
            argument="module",
            problem=f"must be a flax.linen.Module, got {type(module).__name__}",
            fix="pass a module instance, e.g. nn.Dense(4)",
        )
    if module.scope is not None:
        raise errors.ArgumentTypeError(
            function="js.flax_module",
            argument="module",
            problem=f"must be an unbound flax module, but {type(module).__name__} is bound "
            "to a parent module",
            fix="pass a fresh instance (e.g. nn.Dense(4))",
        )
    streams = tuple(rngs)
    if "params" in streams:
        raise errors.ArgumentError(
            function="js.flax_module",
            argument="rngs",
            problem="names the 'params' stream, which js.flax_module derives from the "
            "variables' names",
            fix="list only other streams, e.g. rngs=('dropout',)",
        )
    return streams


def _obtain(structure: Mapping, initializer: Any) -> dict[str, dict]:
    """The module's variables, collection by collection, through
    ``get_variable`` (created with the module's own initializers in init)."""
    variables: dict[str, dict] = {}
    for collection, tree in structure.items():
        for path, leaf in trees.flatten(tree).items():
            value = get_variable(
                path,
                leaf.shape,
                leaf.dtype,
                initializer=initializer.of(collection, path),
                trainable=collection == "params",
            )
            trees.set_path(variables.setdefault(collection, {}), path, value)
    return variables


def _state_collections(mutable: Any, variables: Mapping) -> list[str]:
    """The collections ``apply`` may change, as ``mutable`` names them."""
    if mutable is True:
        return [c for c in variables if c != "params"]
    if mutable is False:
        return []
    names = [mutable] if isinstance(mutable, str) else mutable
    return [c for c in names if c in variables]


def _assign_updates(variables: Mapping, updates: Mapping, collections: list[str]) -> None:
    """``js.assign`` of every state variable the module's apply changed."""
    for collection in collections:
        for path, new in trees.flatten(updates.get(collection, {})).items():
            if new is not trees.lookup(variables[collection], path):
                assign(path, new)


@contextlib.contextmanager
def _outside_flax_modules():
    """Runs a jaxscope function as flax runs top-level code, with no current
    module: flax would otherwise bind every module the function constructs
    (for ``js.flax_module``) to the calling module as its submodule. Flax
    keeps that stack in ``flax.linen.module._context``; where a flax version
    lacks it, nothing changes."""
    stack = getattr(getattr(linen_module, "_context", None), "module_stack", None)
    if not isinstance(stack, list):
        yield
        return
    stack.append(None)
    try:
        yield
    finally:
        stack.pop()


class JaxscopeModule(nn.Module):
    """A jaxscope function as a ``flax.linen.Module`` (see :func:`to_flax`).

    Attributes:
        fn: the jaxscope model function.
        state_collection: the flax collection holding its ``trainable=False``
            variables.
        rng_stream: the flax rng stream feeding ``js.next_rng_key()``.
    """

    fn: Callable[..., Any]
    state_collection: str = "state"
    rng_stream: str | None = "dropout"

    @nn.compact
    def __call__(self, *args, **kwargs):
        f = transform_with_state(self.fn)
        stream = self.rng_stream
        rng = self.make_rng(stream) if stream is not None and self.has_rng(stream) else None
        if self.is_initializing():
            key = self.make_rng("params")
            with _outside_flax_modules():
                params, state = f.init(key, *args, **kwargs)
            # A module called twice in one init gets its first values back.
            params = {top: self.param(top, lambda _, s=s: s) for top, s in params.items()}
            state = {
                top: self.variable(self.state_collection, top, lambda s=s: s).value
                for top, s in state.items()
            }
            if rng is None:
                rng = jax.random.fold_in(key, 1)
        else:
            params = dict(self.variables.get("params", {}))
            state = dict(self.variables.get(self.state_collection, {}))
        with _outside_flax_modules():
            out, new_state = f.apply(params, state, *args, rng=rng, **kwargs)
        if self.is_initializing():
            return out  # init returns the initial state, as flax's own modules do
        for top, subtree in new_state.items():
            old = jax.tree.leaves(state.get(top, {}))
            if any(a is not b for a, b in zip(jax.tree.leaves(subtree), old, strict=True)):
                self.put_variable(self.state_collection, top, subtree)
        return out


def to_flax(
    fn: Callable | Transformed | TransformedWithState,
    *,
    name: str | None = None,
    state_collection: str = "state",
    rng_stream: str | None = "dropout",
) -> JaxscopeModule:
    """Wraps a jaxscope function as a ``flax.linen.Module``.

    The module's ``"params"`` collection is the tree ``js.transform(fn).init``
    would return, with the same nested names; ``trainable=False`` variables
    live in ``state_collection`` (pass ``mutable=[state_collection]`` to
    ``apply`` to get their updates, as for flax's ``batch_stats``); ``init``
    returns their initial values, as flax's own modules do.
    ``js.next_rng_key()`` draws from the ``rng_stream`` flax stream (in
    ``init``, from ``params`` when that stream is not given).

    Args:
        fn: a jaxscope model function, or a ``js.transform`` result.
        name: the flax module name.
        state_collection: the flax collection of the state.
        rng_stream: the flax rng stream feeding ``js.next_rng_key()``.

    >>> def mlp(x):
    ...     with js.variable_scope("hidden"):
    ...         w = js.get_variable("w", [x.shape[-1], 4])
    ...     return jnp.tanh(x @ w)
    >>> module = js.to_flax(mlp)
    >>> variables = module.init(jax.random.key(0), jnp.ones((1, 3)))
    >>> jax.tree.map(jnp.shape, variables)
    {'params': {'hidden': {'w': (3, 4)}}}
    >>> module.apply(variables, jnp.ones((1, 3))).shape
    (1, 4)
    """
    if isinstance(fn, (Transformed, TransformedWithState)):
        fn = fn.fn
    return JaxscopeModule(
        fn=fn, state_collection=state_collection, rng_stream=rng_stream, name=name
    )
