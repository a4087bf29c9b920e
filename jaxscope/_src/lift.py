"""Lifted transforms: JAX control flow whose bodies may create variables.

A raw ``jax.lax.scan`` cannot create a variable during ``init``: the value
would be a tracer of the scan's body and leak out of it. The lifted versions
here make the same model function work in ``init`` and ``apply``:

- In ``init`` the body is first traced abstractly (``jax.eval_shape``) with the
  call's full bookkeeping, so every name it obtains is checked and created
  exactly as the first iteration of the unrolled loop would create it; the
  created variables are then initialized in the caller's trace, and the body
  runs under the raw transform reading them (it sees the same names again
  without re-checking them).
- In ``apply`` the body runs directly under the raw transform; the variables
  it looks up are values of the caller's trace, closed over by the body.

``layer_stack`` is the exception: in both modes it discovers the body's
variables first, because they enter its ``lax.scan`` as stacked inputs.

``js.next_rng_key()`` inside a body draws from a stream derived from a key
taken at the call site: per iteration for ``scan`` and ``while_loop``, per
layer for ``layer_stack``, and per example for ``vmap(split_rng=True)``.
``js.assign`` inside a lifted body is an error: return the value through the
carry instead.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import get_opaque_trace_state

from jaxscope._src import context, errors, rng, trees
from jaxscope._src.context import Frame, Mode, VariableRecord
from jaxscope._src.sharding import initialize, place
from jaxscope._src.variables import run_initializer

_BODY_FIELDS = ("trace_state", "replay", "stack", "stream_key", "rng_counts", "current_scope")


@contextlib.contextmanager
def _body(frame: Frame, key: Any, replay: dict | None, stack: Any):
    """Sets the frame up for one trace of a lifted body, and restores it."""
    saved = [getattr(frame, field) for field in _BODY_FIELDS]
    frame.trace_state = get_opaque_trace_state()
    frame.replay, frame.stack = replay, stack
    frame.stream_key = key
    frame.rng_counts = {}
    frame.lift_depth += 1
    try:
        yield
    finally:
        for field, value in zip(_BODY_FIELDS, saved, strict=True):
            setattr(frame, field, value)
        frame.lift_depth -= 1


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


class _Lifted:
    """One call of a lifted transform: its stream key and, in init, the
    discovery of the variables its bodies create."""

    def __init__(self, frame: Frame, discover: bool, stack: Any = None):
        self.frame = frame
        rng.ensure_keys(frame)
        self.key = rng.draw_key(frame) if frame.rng is not None else None
        self.discover = discover and frame.replay is None
        self.replay = {} if self.discover else frame.replay
        self.body_stack = frame.stack if stack is None else stack
        # The default_name counts: a mark before the first discovery trace,
        # the changes the discovery made (redone after the run), and how many
        # marks this call holds.
        self._mark: int | None = None
        self._discovered: list | None = None
        self._marks = 0

    def _take_mark(self) -> int:
        self._marks += 1
        return self.frame.scope_counts.mark()

    def key_at(self, index: Any) -> Any:
        return None if self.key is None or index is None else jax.random.fold_in(self.key, index)

    def trace(
        self, fn: Callable, args: tuple, kwargs: dict | None = None, wrap: Callable = lambda f: f
    ) -> None:
        """Traces ``wrap(body)(*args, **kwargs)`` abstractly with full
        bookkeeping. Only the array leaves of the arguments are abstracted;
        other leaves (a string, a flag) reach the body as they are, as they
        would under the raw transform."""
        frame = self.frame
        if self._mark is None:
            self._mark = self._take_mark()
            self._first = len(frame.records)

        def traced(*a, **kw):
            with _body(frame, self.key_at(0), None, self.body_stack):
                return fn(*a, **kw)

        leaves, treedef = jax.tree.flatten((args, kwargs or {}))
        arrays = [i for i, leaf in enumerate(leaves) if hasattr(leaf, "shape")]

        def run(*array_leaves):
            full = list(leaves)
            for i, leaf in zip(arrays, array_leaves, strict=True):
                full[i] = leaf
            a, kw = jax.tree.unflatten(treedef, full)
            return wrap(traced)(*a, **kw)

        jax.eval_shape(run, *(leaves[i] for i in arrays))

    def created(self) -> list[VariableRecord]:
        """The records the discovery traces created, in creation order."""
        if self._mark is None:
            return []
        return list(self.frame.records.values())[self._first :]

    def start_run(self) -> None:
        """Before the real run: the bodies will open the same scopes again."""
        if self._mark is not None:
            self._discovered = self.frame.scope_counts.undo(self._mark)

    def end_run(self) -> None:
        """After the call (also a failed one): the counts are as the
        discovery left them, and this call's marks are released."""
        counts = self.frame.scope_counts
        if self._discovered is not None:
            counts.undo(self._mark)
            counts.redo(self._discovered)
        counts.release(self._marks)

    def body(self, fn: Callable, layer_params: bool = False) -> Callable:
        """``fn`` as the raw transform's body: ``body(key, *args)``, or
        ``body(key, params, *args)`` with ``layer_params``, where ``params``
        maps a layer_stack's variables to this layer's slices.

        JAX may trace a body more than once (e.g. to settle a weakly typed
        carry); later traces are the same iteration again, so they reopen
        the same scopes and read the variables the first trace obtained.
        """
        frame = self.frame
        stack = None if self.discover else self.body_stack
        first: list[int] = []  # the counts mark before the first trace

        def run(key, *args, **kwargs):
            replay = self.replay
            if layer_params:
                replay, args = args[0], args[1:]
            counts = frame.scope_counts
            if first:  # as before the first trace, then as after it
                since_first = counts.undo(first[0])
                with _body(frame, key, {} if replay is None else replay, stack):
                    out = fn(*args, **kwargs)
                counts.undo(first[0])
                counts.redo(since_first)
                return out
            first.append(self._take_mark())
            with _body(frame, key, replay, stack):
                return fn(*args, **kwargs)

        return run


def _concrete(record: VariableRecord, init_fn: Callable) -> jax.Array:
    """A concrete initializer's value, in the caller's trace."""
    try:
        return jnp.copy(init_fn(None, None, None))
    except jax.errors.UnexpectedTracerError:
        raise errors.InitializerError(
            f"Variable {record.name} is created inside a lifted transform with a "
            "concrete initializer computed inside it (a jax array built in the "
            "body), which cannot be used outside. Fix: build the value before the "
            "lifted transform, pass a numpy array, or use an initializer function "
            "such as js.initializers.zeros."
        ) from None


@contextlib.contextmanager
def _replaying(frame: Frame, values: dict | None = None):
    """While initializers run again outside the discovery trace: a
    ``get_variable`` an initializer itself makes gets the value already
    made for that name (``values``, else its record's), with no bookkeeping."""
    saved = frame.replay
    frame.replay = {} if values is None else values
    try:
        yield
    finally:
        frame.replay = saved


def _materialize(frame: Frame, records: list[VariableRecord]) -> None:
    """Initializes, in the caller's trace, the variables a discovery created
    (in creation order: what an initializer obtains is made before it)."""
    with _replaying(frame):
        for record in records:
            if record.init_spec is None:
                continue  # looked up in apply's tree: already a caller value
            init_fn, shape, dtype, needs_key = record.init_spec
            if not needs_key:
                value = place(_concrete(record, init_fn), record.sharding)
                record.value = record.initial_value = value
                continue
            key = rng.variable_key(frame, record.name)
            value = initialize(
                lambda k, r=record, f=init_fn, s=shape, d=dtype: run_initializer(
                    r.name, f, k, s, d
                ),
                key,
                record.sharding,
            )
            record.value = record.initial_value = value


def scan(
    f: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
) -> tuple[Any, Any]:
    """``jax.lax.scan`` whose body may create and reuse variables.

    Variables obtained in ``f`` are created once and shared by all iterations
    (TF1's ``dynamic_rnn`` with a reused cell scope), with the names and
    initial values the unrolled Python loop would give them. Scopes, reuse
    flags, initializers, regularizers and custom getters work inside as
    outside. ``js.next_rng_key()`` gives a different key each iteration.

    >>> def rnn(xs):
    ...     def step(h, x):
    ...         with js.variable_scope("cell"):
    ...             w = js.get_variable("w", [h.shape[-1], h.shape[-1]])
    ...         h = jnp.tanh(h @ w + x)
    ...         return h, h
    ...     return js.scan(step, jnp.zeros(4), xs)[1]
    >>> f = js.transform(rnn)
    >>> params = f.init(0, jnp.ones((7, 4)))
    >>> jax.jit(f.apply)(params, jnp.ones((7, 4))).shape
    (7, 4)

    Outside a transform it is ``jax.lax.scan``.
    """
    frame = context.current_or_none()
    if frame is None:
        return jax.lax.scan(f, init, xs, length=length, reverse=reverse, unroll=unroll)
    if length is None:
        leaves = jax.tree.leaves(xs)
        if not leaves:
            raise errors.ArgumentError(
                "js.scan needs xs with at least one array to scan over, or length=... "
                "Fix: js.scan(f, init, xs) or js.scan(f, init, None, length=n)."
            )
        length = leaves[0].shape[0]
    lifted = _Lifted(frame, discover=frame.mode is Mode.INIT)
    try:
        if lifted.discover:
            x0 = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), xs
            )
            lifted.trace(f, (_abstract(init), x0))
            _materialize(frame, lifted.created())
        body = lifted.body(f)
        if lifted.key is None:  # no per-iteration keys: scan over xs alone
            step, scanned = functools.partial(body, None), xs
        else:

            def step(carry, ix):
                i, x = ix
                return body(lifted.key_at(i), carry, x)

            scanned = (jnp.arange(length), xs)
        lifted.start_run()
        return jax.lax.scan(step, init, scanned, length=length, reverse=reverse, unroll=unroll)
    finally:
        lifted.end_run()


def remat(fn: Callable, **checkpoint_kwargs) -> Callable:
    """``jax.checkpoint`` (rematerialization) for a function that may create
    variables; the variables are stored, only activations are recomputed.

    ``checkpoint_kwargs`` (``policy``, ``prevent_cse``, ``static_argnums``) go
    to ``jax.checkpoint``.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        frame = context.current_or_none()
        if frame is None:
            return jax.checkpoint(fn, **checkpoint_kwargs)(*args, **kwargs)
        lifted = _Lifted(frame, discover=frame.mode is Mode.INIT)
        try:
            if lifted.discover:
                lifted.trace(fn, args, kwargs)
                _materialize(frame, lifted.created())
            body = lifted.body(fn)
            lifted.start_run()
            return jax.checkpoint(functools.partial(body, lifted.key_at(0)), **checkpoint_kwargs)(
                *args, **kwargs
            )
        finally:
            lifted.end_run()

    return wrapped


def vmap(
    fn: Callable,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: str | None = None,
    axis_size: int | None = None,
    split_rng: bool = False,
) -> Callable:
    """``jax.vmap`` for a function that may create variables.

    Variables are shared by every example of the batch (created once,
    unbatched): the typical use is a per-example model applied to a batch.
    ``js.next_rng_key()`` gives the same key to every example unless
    ``split_rng=True``, which folds in the example's index. Arguments are
    as ``jax.vmap`` takes them: non-array arguments under ``in_axes=None``,
    and keyword arguments (mapped over their leading axis).
    """
    name = axis_name or "jaxscope_vmap"

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        frame = context.current_or_none()
        batched = functools.partial(
            jax.vmap, in_axes=in_axes, out_axes=out_axes, axis_name=name, axis_size=axis_size
        )
        if frame is None:
            return batched(fn)(*args, **kwargs)
        lifted = _Lifted(frame, discover=frame.mode is Mode.INIT)
        try:
            if lifted.discover:
                lifted.trace(fn, args, kwargs, wrap=batched)
                _materialize(frame, lifted.created())
            body = lifted.body(fn)

            def per_example(*a, **kw):
                index = jax.lax.axis_index(name) if split_rng else 0
                return body(lifted.key_at(index), *a, **kw)

            lifted.start_run()
            return batched(per_example)(*args, **kwargs)
        finally:
            lifted.end_run()

    return wrapped


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands) -> Any:
    """``jax.lax.cond`` whose branches may create variables.

    Both branches' variables are created in ``init`` (as TF1's ``tf.cond``
    builds both branches), whichever branch runs.
    """
    frame = context.current_or_none()
    if frame is None:
        return jax.lax.cond(pred, true_fun, false_fun, *operands)
    lifted = _Lifted(frame, discover=frame.mode is Mode.INIT)
    try:
        if lifted.discover:
            lifted.trace(true_fun, operands)
            lifted.trace(false_fun, operands)
            _materialize(frame, lifted.created())
        branches = [lifted.body(fn) for fn in (true_fun, false_fun)]
        key = lifted.key_at(0)
        lifted.start_run()
        return jax.lax.cond(pred, *(functools.partial(b, key) for b in branches), *operands)
    finally:
        lifted.end_run()


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``jax.lax.while_loop`` whose condition and body may create variables
    (e.g. a greedy decoder that stops at end-of-sequence).

    ``js.next_rng_key()`` in the body gives a different key each iteration.
    """
    frame = context.current_or_none()
    if frame is None:
        return jax.lax.while_loop(cond_fun, body_fun, init_val)
    lifted = _Lifted(frame, discover=frame.mode is Mode.INIT)
    try:
        if lifted.discover:
            abstract = _abstract(init_val)
            lifted.trace(cond_fun, (abstract,))
            lifted.trace(body_fun, (abstract,))
            _materialize(frame, lifted.created())
        cond_body, loop_body = lifted.body(cond_fun), lifted.body(body_fun)

        def counted_cond(state):
            i, val = state
            return cond_body(lifted.key_at(i), val)

        def counted_body(state):
            i, val = state
            return i + 1, loop_body(lifted.key_at(i), val)

        lifted.start_run()
        return jax.lax.while_loop(counted_cond, counted_body, (jnp.int32(0), init_val))[1]
    finally:
        lifted.end_run()


class _Stack:
    """A ``layer_stack`` being discovered: maps variables to their layers."""

    def __init__(self, num_layers: int, prefix: str, layer_name: str):
        self.num_layers = num_layers
        self.prefix = prefix
        self.layer_name = layer_name
        self.stacked: dict[str, Any] = {}

    def layer_value(self, name: str, value: Any) -> Any:
        """A stacked value found in apply's tree: checked, and its layer 0
        handed to the body being discovered."""
        if value.ndim == 0 or value.shape[0] != self.num_layers:
            raise errors.ShapeMismatchError(
                f"Variable {name} is created inside js.layer_stack({self.num_layers}), "
                f"so it must have a leading axis of size {self.num_layers}, but found "
                f"shape {tuple(value.shape)}. Fix: pass params made for this model "
                "(js.stack_layers converts params of the unrolled model)."
            )
        self.stacked[name] = value
        return value[0]

    def unrolled_name(self, name: str, index: int) -> str:
        prefix = self.prefix + "/" if self.prefix else ""
        if not name.startswith(prefix):
            raise errors.LiftError(
                f"Variable {name} is created inside js.layer_stack, which was called "
                f"in scope '{self.prefix}', but the variable is not under that scope. "
                "Fix: create the layers' variables under the scope layer_stack is "
                "called in (do not re-enter a captured scope from elsewhere)."
            )
        return f"{prefix}{self.layer_name}_{index}/{name[len(prefix) :]}"

    def materialize(self, frame: Frame, records: list[VariableRecord]) -> None:
        made: dict[str, jax.Array] = {}  # the stacked values, in creation order
        for record in records:
            self.unrolled_name(record.name, 0)  # every variable must be under the scope
            if record.sharding is not None:
                record.sharding = jax.sharding.PartitionSpec(None, *record.sharding)
            if record.init_spec is None:
                value = place(self.stacked[record.name], record.sharding)
            else:
                value = self._initial(frame, record, made)
            record.value = record.initial_value = made[record.name] = value
            record.shape = tuple(value.shape)

    def _initial(self, frame: Frame, record: VariableRecord, made: dict) -> jax.Array:
        """The stacked initial value, born with the stacked spec: layer ``i``
        is initialized from its unrolled name's key. An initializer calling
        ``get_variable`` gets layer ``i``'s slice of what it obtains."""
        n = self.num_layers
        init_fn, shape, dtype, needs_key = record.init_spec
        if not needs_key:
            value = jnp.broadcast_to(_concrete(record, init_fn), (n, *shape))
            return place(value, record.sharding)
        keys = jnp.stack(
            [rng.variable_key(frame, self.unrolled_name(record.name, i)) for i in range(n)]
        )

        def layer(key: jax.Array, layer_values: dict) -> jax.Array:
            with _replaying(frame, layer_values):
                return run_initializer(record.name, init_fn, key, shape, dtype)

        def make(keys: jax.Array) -> jax.Array:
            return jax.vmap(layer)(keys, made)

        return initialize(make, keys, record.sharding)


def layer_stack(num_layers: int, *, unroll: int = 1, layer_name: str = "layer") -> Callable:
    """Decorator: ``f(x, *args) -> x`` applied ``num_layers`` times as one scan.

    The variables ``f`` creates get a leading axis of size ``num_layers`` and
    keep their names (under the scope ``layer_stack`` is called in). The
    layers run as one ``jax.lax.scan``, so compile time does not grow with
    depth. Extra ``args`` are passed unchanged to every layer.

    Layer ``i``'s slice is initialized exactly as the unrolled model's
    variable ``<scope>/layer_<i>/<name>`` would be, so
    ``js.unstack_layers(params)`` gives the params of the unrolled model
    ``for i in range(n): with js.variable_scope(f"layer_{i}"): x = f(x)``.

    >>> def model(x):
    ...     @js.layer_stack(8)
    ...     def layer(x):
    ...         w = js.get_variable("w", [x.shape[-1], x.shape[-1]])
    ...         return jnp.tanh(x @ w)
    ...     with js.variable_scope("mlp"):
    ...         return layer(x)
    >>> params = js.transform(model).init(0, jnp.ones(4))
    >>> params["mlp"]["w"].shape
    (8, 4, 4)

    A layer stack cannot be nested inside another lifted transform; lifted
    transforms (``js.scan``, ``js.remat``, …) inside the layers are fine.
    ``js.next_rng_key()`` gives each layer its own keys.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise errors.ArgumentError(
            f"js.layer_stack needs a positive int num_layers, got {num_layers!r}. Fix: "
            "js.layer_stack(n) with n >= 1 (without layers, call nothing)."
        )

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def stacked(x, *args, **kwargs):
            frame = context.current_or_none()
            layer = functools.partial(f, **kwargs) if kwargs else f
            if frame is None:
                return jax.lax.scan(lambda c, _: (layer(c, *args), None), x, length=num_layers)[0]
            if frame.lift_depth:
                raise errors.LiftError(
                    "js.layer_stack cannot be nested inside another lifted transform "
                    "(js.scan, js.vmap, js.remat, js.cond, js.while_loop or another "
                    "js.layer_stack). Fix: put the layer stack outermost; lifted "
                    "transforms inside the layers are supported."
                )
            stack = _Stack(num_layers, frame.current_scope.name, layer_name)
            lifted = _Lifted(frame, discover=True, stack=stack)
            try:
                lifted.trace(lambda c: layer(c, *args), (_abstract(x),))
                created = lifted.created()
                stack.materialize(frame, created)
                params = {r.name: r.value for r in created}
                run = lifted.body(lambda c: layer(c, *args), layer_params=True)

                def step(carry, xs):
                    i, layer_params = xs
                    return run(lifted.key_at(i), layer_params, carry), None

                lifted.start_run()
                return jax.lax.scan(step, x, (jnp.arange(num_layers), params), unroll=unroll)[0]
            finally:
                lifted.end_run()

        return stacked

    return decorate


def unstack_layers(tree: Mapping, layer_name: str = "layer") -> dict:
    """Stacked params (leading axis = layer) to the unrolled model's params:
    each leaf ``p`` becomes ``layer_0/p``, ``layer_1/p``, ….

    Pass the sub-tree of the scope ``layer_stack`` was called in.

    >>> js.unstack_layers({"w": jnp.zeros((2, 3))})["layer_1"]["w"].shape
    (3,)
    """
    flat = trees.flatten(tree)
    scalars = [name for name, leaf in flat.items() if not jnp.ndim(leaf)]
    if scalars:
        raise errors.ArgumentError(
            f"js.unstack_layers: variable {scalars[0]} is a scalar, so it has no "
            "leading layer axis. Fix: pass the sub-tree of the scope js.layer_stack "
            "was called in (every leaf stacked, of shape [num_layers, ...])."
        )
    sizes = {jnp.shape(leaf)[0] for leaf in flat.values()}
    if len(sizes) != 1:
        raise errors.ArgumentError(
            f"js.unstack_layers: the leaves disagree on the number of layers "
            f"({sorted(sizes)}). Fix: pass only the sub-tree of the scope js.layer_stack "
            "was called in."
        )
    (n,) = sizes
    return trees.unflatten(
        {f"{layer_name}_{i}/{name}": leaf[i] for i in range(n) for name, leaf in flat.items()}
    )


def stack_layers(tree: Mapping, layer_name: str = "layer") -> dict:
    """Inverse of :func:`unstack_layers`: ``{layer_0: p0, layer_1: p1, …}``
    to stacked params with a leading layer axis.

    >>> tree = {"layer_0": {"w": jnp.zeros(3)}, "layer_1": {"w": jnp.ones(3)}}
    >>> js.stack_layers(tree)["w"].shape
    (2, 3)
    """
    n = len(tree)
    names = [f"{layer_name}_{i}" for i in range(n)]
    if sorted(tree) != sorted(names):
        missing = sorted(set(names) - set(tree))
        raise errors.ArgumentError(
            f"js.stack_layers expects the keys {names[0]} ... {names[-1]} (layer_name="
            f"{layer_name!r}), got {sorted(tree)[:5]}"
            f"{f'; missing {missing[0]}' if missing else ''}. Fix: pass the sub-tree "
            "holding exactly the unrolled layers, numbered from 0."
        )
    layers = [trees.flatten(tree[name]) for name in names]
    for name, layer in zip(names, layers, strict=True):
        if layer.keys() != layers[0].keys():
            differ = sorted(layer.keys() ^ layers[0].keys())
            raise errors.ArgumentError(
                f"js.stack_layers: {name} and {names[0]} do not hold the same variables "
                f"({', '.join(differ[:3])} is in one only). Fix: every layer must have "
                "the same variables."
            )
    return trees.unflatten({k: jnp.stack([layer[k] for layer in layers]) for k in layers[0]})
