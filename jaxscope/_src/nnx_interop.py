"""Flax NNX interop: NNX modules inside jaxscope functions, and the other way.

:func:`nnx_module` runs a ``flax.nnx.Module`` inside a jaxscope function with
its variables mounted under the current scope and obtained through
``js.get_variable``; :func:`to_nnx` wraps a jaxscope function as an
``nnx.Module`` whose variables are the jaxscope trees.

Names: an NNX variable's state path (what ``nnx.state`` shows) joined with
``/`` is its jaxscope name below the mount scope, integer keys written in
decimal: ``linear/kernel``, ``bn/scale``, ``bn/mean``, ``layers/0/bias``.
``nnx.Param`` variables are params; every other variable type (``BatchStat``,
``Cache``, ``Intermediate``, user types) is ``trainable=False`` state. The
module's rng streams (``RngKey``/``RngCount``) are not variables: each call
seeds them from ``js.next_rng_key()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as linen
import jax
import numpy as np
from flax import nnx

from jaxscope._src import context, errors, trees
from jaxscope._src.flax_interop import _mount_scope, _snake_case
from jaxscope._src.rng import next_rng_key
from jaxscope._src.transform import Transformed, TransformedWithState, transform_with_state
from jaxscope._src.variables import assign, get_variable


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _name(path: tuple) -> str:
    return "/".join(str(key) for key in path)


def _fresh_key(old: jax.Array) -> jax.Array:
    """A key from ``js.next_rng_key()`` shaped as ``old`` (one key, or a batch
    of keys for a stream split by ``nnx.split_rngs``)."""
    key = next_rng_key()
    return jax.random.split(key, old.shape) if old.shape else key


def _check_nnx(module: Any, what: str) -> None:
    if isinstance(module, linen.Module):
        raise errors.FlaxModuleTypeError(
            function=what,
            argument="module",
            problem=f"must be a flax.nnx.Module, but {type(module).__name__} is a flax.linen.Module",
            fix="use js.flax_module(module) for Linen modules",
        )
    if not isinstance(module, nnx.Module):
        raise errors.FlaxModuleTypeError(
            function=what,
            argument="module",
            problem=f"must be a flax.nnx.Module, got {type(module).__name__}",
            fix="pass a module instance, e.g. nnx.Linear(3, 4, rngs=nnx.Rngs(0))",
        )


def nnx_module(
    module: nnx.Module, name: str | None = None, *, reuse: Any = None
) -> Callable[..., Any]:
    """Calls a ``flax.nnx.Module`` inside a jaxscope function.

    Returns ``call(*args, **kwargs)``, which runs ``module(*args, **kwargs)``
    with the module's variables mounted under ``<current scope>/<name>``
    (names as in the module docstring: ``kernel``, ``bn/mean``,
    ``layers/0/bias``). ``nnx.Param`` variables are params; the others
    (``BatchStat``, ``Cache``, ...) are ``trainable=False`` state, so a
    module that has them needs ``js.transform_with_state``, and the updates
    it makes (BatchNorm's running statistics) come back as ``new_state``.
    Every variable is obtained with ``js.get_variable``: scopes, reuse
    flags, custom getters and every check apply.

    ``init`` gives the variables the module's own values, as they were when
    ``nnx_module`` was called (not values derived from ``init``'s rng: the
    module was initialized when it was built). ``apply`` runs a copy of the
    module holding the tree's values; the module object itself is never
    changed. Inside ``js.layer_stack`` every layer therefore starts from
    the same values.

    Randomness: each call seeds every rng stream the module holds (e.g.
    ``nnx.Dropout``'s) with a key from ``js.next_rng_key()``, so dropout
    differs from call to call and follows ``apply``'s ``rng``. A call
    without an ``rng`` keeps the module's own keys, and a module that then
    draws from them raises ``MissingRNGError``. A module built without
    ``rngs`` can be given a key in the call: ``call(x, rngs=js.next_rng_key())``.

    Args:
        module: a ``flax.nnx.Module`` instance.
        name: the scope to mount it under. Default: its class name in snake
            case (``Linear`` -> ``linear``, ``BatchNorm`` -> ``batch_norm``),
            uniquified as TF1's layers are (``linear``, ``linear_1``, ...).
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's
            variables (``None`` inherits the scope's reuse flag).

    Raises:
        FlaxModuleTypeError: for a ``flax.linen.Module`` (use
            ``js.flax_module``) or anything else that is not an NNX module.

    >>> from flax import nnx
    >>> linear = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> def model(x):
    ...     with js.variable_scope("encoder"):
    ...         return js.nnx_module(linear)(x)
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((1, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'encoder': {'linear': {'bias': (2,), 'kernel': (3, 2)}}}
    >>> bool((params["encoder"]["linear"]["kernel"] == linear.kernel[...]).all())
    True
    >>> bool(jnp.allclose(jax.jit(f.apply)(params, jnp.ones((1, 3))), linear(jnp.ones((1, 3)))))
    True
    """
    _check_nnx(module, "js.nnx_module")
    graphdef, rng_state, variables = nnx.split(module, nnx.RngState, ...)
    rng_leaves = list(nnx.to_flat_state(rng_state))
    leaves = list(nnx.to_flat_state(variables))
    for path, variable in leaves:
        if not _is_array(variable.get_value()):
            raise errors.FlaxModuleTypeError(
                problem=f"the NNX {type(variable).__name__} at {_name(path)} of "
                f"{type(module).__name__} holds a {type(variable.get_value()).__name__}, "
                "not an array; jaxscope variables are arrays",
                fix="give it an array value (e.g. jnp.zeros(shape)) before mounting the module",
            )
    default = _snake_case(type(module).__name__)

    def call(*args, **kwargs):
        frame = context.current(f"js.nnx_module({type(module).__name__})")
        with _mount_scope(name, default, reuse) as scope:
            given = {}
            for path, variable in leaves:
                stored = variable.get_value()
                given[path] = get_variable(
                    _name(path),
                    stored.shape,
                    stored.dtype,
                    initializer=lambda key, shape, dtype, stored=stored: stored,
                    trainable=isinstance(variable, nnx.Param),
                )
            rng_values = {
                path: _fresh_key(rng.get_value())
                if isinstance(rng, nnx.RngKey) and frame.rng is not None
                else rng.get_value()
                for path, rng in rng_leaves
            }
            copy = nnx.merge(graphdef, _state(rng_leaves, rng_values), _state(leaves, given))
            out = copy(*args, **kwargs)
            _store_updates(type(module).__name__, scope.name, copy, given, rng_values, frame)
        return out

    return call


def _state(leaves: list, values: dict) -> nnx.State:
    """Fresh variables (never the module's own) holding ``values``."""
    return nnx.from_flat_state([(path, variable.copy(values[path])) for path, variable in leaves])


def _store_updates(module_name, mount, copy, given, rng_values, frame) -> None:
    """Assigns the state the module changed; a changed param or a drawn key
    without an rng is an error (either would be lost silently)."""
    _, rng_state, variables = nnx.split(copy, nnx.RngState, ...)
    for path, variable in nnx.to_flat_state(variables):
        new = variable.get_value()
        if new is given[path]:
            continue
        if isinstance(variable, nnx.Param):
            raise errors.AssignError(
                path=trees.join(mount, _name(path)),
                problem=f"it is an nnx.Param, which the NNX module {module_name} mounted at "
                f"{mount} changed during the call; params are read-only inside a jaxscope "
                "function",
                fix="make it another variable type (e.g. nnx.BatchStat) to keep it as "
                "state, or update params outside the model",
            )
        assign(_name(path), new)
    if frame.rng is None:
        for path, count in nnx.to_flat_state(rng_state):
            if isinstance(count, nnx.RngCount) and count.get_value() is not rng_values[path]:
                raise errors.MissingRNGError(
                    needed_by=f"The NNX module {module_name} mounted at {mount} (its "
                    f"'{count.get_metadata('tag', '?')}' stream)",
                    fix="pass rng=jax.random.key(...) to apply (or make the module "
                    "deterministic, e.g. module.eval())",
                )


class JaxscopeNNXModule(nnx.Module):
    """A jaxscope function as a ``flax.nnx.Module`` (see :func:`to_nnx`).

    Its attributes are the top-level names of the jaxscope trees, holding
    nested dicts of ``nnx.Param`` (the params) and ``state_type`` variables
    (the state), so ``nnx.state(module, nnx.Param)`` has the paths of
    ``js.transform(fn).init``'s tree. Its own settings live in attributes
    prefixed ``jaxscope__``.
    """

    def __init__(
        self,
        fn: Callable | Transformed | TransformedWithState,
        *args: Any,
        rngs: nnx.Rngs,
        state_type: type[nnx.Variable] = nnx.BatchStat,
        rng_stream: str | None = "dropout",
        **kwargs: Any,
    ):
        if isinstance(fn, (Transformed, TransformedWithState)):
            fn = fn.fn
        self.jaxscope__fn = fn
        params, state = transform_with_state(fn).init(rngs.params(), *args, **kwargs)
        has_stream = rng_stream is not None and (rng_stream in rngs or "default" in rngs)
        self.jaxscope__rngs = rngs[rng_stream].fork() if has_stream else nnx.data(None)
        self.jaxscope__names = tuple(sorted({*params, *state}))
        flat = {name: nnx.Param(value) for name, value in trees.flatten(params).items()}
        flat |= {name: state_type(value) for name, value in trees.flatten(state).items()}
        for top, tree in trees.unflatten(flat).items():
            if top.startswith(("jaxscope__", "_")) or hasattr(nnx.Module, top):
                raise errors.NameConflictError(
                    path=top,
                    problem=f"the jaxscope variables under '{top}' cannot be an attribute "
                    f"of an nnx.Module: '{top}' is a name nnx.Module itself uses",
                    fix="open a scope around the function's body (js.variable_scope('model'))",
                )
            setattr(self, top, nnx.data(tree))

    def _trees(self) -> tuple[dict, dict]:
        params, state = {}, {}
        for top in self.jaxscope__names:
            node = getattr(self, top)
            flat = trees.flatten({top: node}) if isinstance(node, dict) else {top: node}
            for name, variable in flat.items():
                side = params if isinstance(variable, nnx.Param) else state
                trees.set_path(side, name, variable)
        return params, state

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        params, state = self._trees()
        values = jax.tree.map(lambda v: v.get_value(), (params, state), is_leaf=_is_variable)
        apply = transform_with_state(self.jaxscope__fn).apply
        # The stream advances only in calls that draw a key: a call that
        # needs none runs without one (so that a deterministic call inside
        # js.nnx_module needs no rng either); one that needs one runs again
        # with the stream's next key.
        try:
            out, new_state = apply(*values, *args, **kwargs)
        except errors.MissingRNGError as error:
            if self.jaxscope__rngs is None:
                raise errors.MissingRNGError(
                    needed_by=error.needed_by,
                    path=error.path,
                    cause="this module was built without an rng stream for js.next_rng_key",
                    fix="js.to_nnx(fn, ..., rngs=nnx.Rngs(0, dropout=1))",
                ) from error
            out, new_state = apply(*values, *args, rng=self.jaxscope__rngs(), **kwargs)
        for name, value in trees.flatten(new_state).items():
            variable = trees.lookup(state, name)
            if value is not variable.get_value():
                variable.set_value(value)
        return out


def _is_variable(x: Any) -> bool:
    return isinstance(x, nnx.Variable)


def to_nnx(
    fn: Callable | Transformed | TransformedWithState,
    *args: Any,
    rngs: nnx.Rngs,
    state_type: type[nnx.Variable] = nnx.BatchStat,
    rng_stream: str | None = "dropout",
    **kwargs: Any,
) -> JaxscopeNNXModule:
    """Wraps a jaxscope function as a ``flax.nnx.Module``.

    NNX modules are created with their variables, so ``to_nnx`` runs
    ``js.transform_with_state(fn).init`` on example inputs ``args`` and
    ``kwargs``, with the key of ``rngs``' ``params`` stream. The module's
    params are ``nnx.Param`` variables and its state ``state_type``
    variables, at the paths of the jaxscope trees (``dense/kernel``), so
    ``nnx.state(module, nnx.Param)`` is the params tree and
    ``nnx.split``/``nnx.merge``, ``nnx.jit``, ``nnx.grad`` and
    ``nnx.Optimizer`` work as with any NNX module. Calling it runs
    ``apply``; the state updates the function makes (``js.assign``) are
    written to the module's variables, as NNX's own ``BatchNorm`` does, and
    ``js.next_rng_key()`` draws from the module's ``rng_stream`` stream,
    which advances only in calls that draw a key.

    Args:
        fn: a jaxscope model function, or a ``js.transform`` result.
        *args: example inputs for ``init`` (they fix the variables' shapes).
        rngs: ``nnx.Rngs``: the ``params`` stream initializes, the
            ``rng_stream`` stream (else ``default``) feeds
            ``js.next_rng_key()`` in calls.
        state_type: the NNX variable type of ``trainable=False`` variables.
        rng_stream: the stream feeding ``js.next_rng_key()``; ``None`` for
            none.
        **kwargs: example keyword inputs for ``init``.

    Raises:
        NameConflictError: a top-level scope or variable has a name that
            ``nnx.Module`` uses itself (``eval``, ``train``, ...).

    >>> from flax import nnx
    >>> def mlp(x):
    ...     return js.nn.dense(jax.nn.relu(js.nn.dense(x, 4, name="hidden")), 1, name="out")
    >>> module = js.to_nnx(mlp, jnp.ones((1, 3)), rngs=nnx.Rngs(0))
    >>> jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(module, nnx.Param)))
    {'hidden': {'bias': (4,), 'kernel': (3, 4)}, 'out': {'bias': (1,), 'kernel': (4, 1)}}
    >>> module(jnp.ones((2, 3))).shape
    (2, 1)
    """
    return JaxscopeNNXModule(
        fn, *args, rngs=rngs, state_type=state_type, rng_stream=rng_stream, **kwargs
    )
