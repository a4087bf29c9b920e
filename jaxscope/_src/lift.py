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
variables first, because they enter its ``lax.scan`` as stacked inputs. A
layer stack inside another lifted body, traced again there, finds its
variables by the records its discovery made (``VariableRecord.stack``).

``js.next_rng_key()`` inside a body draws from a stream derived from a key
taken at the call site: per iteration for ``scan`` and ``while_loop``, per
layer for ``layer_stack``, and per example for ``vmap(split_rng=True)``.
State (``trainable=False`` variables, ``js.assign``) is carried through
every body (see ``lift_state``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxscope._src import context, errors, lift_state, rng, trees
from jaxscope._src.context import Body, Frame, Mode, VariableRecord
from jaxscope._src.lift_state import StateCarry
from jaxscope._src.sharding import initialize, place
from jaxscope._src.variables import initial_value, run_initializer


@contextlib.contextmanager
def _body(frame: Frame, key: Any, replay: dict | None, stack: Any):
    """Gives the frame a fresh Body for one trace of a lifted body, and
    restores the outer one (and the current scope) after it."""
    outer, scope = frame.body, frame.current_scope
    frame.body = Body(context.trace_now(), key, {}, replay, stack)
    try:
        yield
    finally:
        frame.body, frame.current_scope = outer, scope


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


class _Lifted:
    """One call of a lifted transform: its stream key and, in init, the
    discovery of the variables its bodies create."""

    def __init__(self, frame: Frame, discover: bool, stack: Any = None):
        self.frame = frame
        rng.ensure_keys(frame)
        self.key = rng.draw_key(frame) if frame.rng is not None else None
        self.discover = discover and frame.body.replay is None
        self.replay = {} if self.discover else frame.body.replay
        self.body_stack = frame.body.stack if stack is None else stack
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
    ) -> Any:
        """Traces ``wrap(body)(*args, **kwargs)`` abstractly with full
        bookkeeping; returns the output's shapes. Only the array leaves of
        the arguments are abstracted; other leaves (a string, a flag) reach
        the body as they are, as they would under the raw transform. What
        the body assigns stays in this trace."""
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

        with lift_state.unchanged(frame):
            return jax.eval_shape(run, *(leaves[i] for i in arrays))

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
            path=record.name,
            problem="is created inside a lifted transform with a concrete initializer computed "
            "inside it (a jax array built in the body), which cannot be used outside",
            fix="build the value before the lifted transform, pass a numpy array, or use an "
            "initializer function such as js.initializers.zeros",
        ) from None


@contextlib.contextmanager
def _replaying(frame: Frame, values: dict | None = None):
    """While initializers run again outside the discovery trace: a
    ``get_variable`` an initializer itself makes gets the value already
    made for that name (``values``, else its record's), with no bookkeeping."""
    body = frame.body
    saved = body.replay
    body.replay = {} if values is None else values
    try:
        yield
    finally:
        body.replay = saved


def _materialize(frame: Frame, records: list[VariableRecord]) -> None:
    """Initializes, in the caller's trace, the variables a discovery created
    (in creation order: what an initializer obtains is made before it)."""
    with _replaying(frame):
        for record in records:
            if record.init_spec is None:
                continue  # looked up in apply's tree: already a caller value
            if record.stack is not None:  # made by a js.layer_stack in the body
                record.stack.initialize(frame, record)
                continue
            init_fn, shape, dtype, needs_key = record.init_spec
            if not needs_key:
                value = place(_concrete(record, init_fn), record.sharding)
                record.value = record.initial_value = value
                continue
            value = initial_value(frame, record.name, init_fn, shape, dtype, record.sharding)
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
    State (``trainable=False`` variables) is carried from iteration to
    iteration: each iteration reads what the previous one assigned, and the
    call reads the last iteration's values afterwards, as after the unrolled
    loop.

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
                function="js.scan",
                problem="needs xs with at least one array to scan over, or length=...",
                fix="js.scan(f, init, xs) or js.scan(f, init, None, length=n)",
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
        carried = StateCarry(frame)

        def step(loop, ix):
            carry, state = loop
            i, x = ix if lifted.key is not None else (None, ix)
            with carried.inside(state):
                carry, y = body(lifted.key_at(i), carry, x)
                return (carry, carried.collect(state)), y

        # Without per-iteration keys the scan runs over xs alone.
        scanned = xs if lifted.key is None else (jnp.arange(length), xs)
        lifted.start_run()
        (carry, state), ys = jax.lax.scan(
            step, (init, carried.values()), scanned, length=length, reverse=reverse, unroll=unroll
        )
        carried.finish(state)
        return carry, ys
    finally:
        lifted.end_run()


def _shift_static(checkpoint_kwargs: dict) -> dict:
    """``jax.checkpoint``'s ``static_argnums`` once the state is passed first."""
    numbers = checkpoint_kwargs.get("static_argnums")
    if numbers is None:
        return checkpoint_kwargs
    numbers = (numbers,) if isinstance(numbers, int) else tuple(numbers)
    return {**checkpoint_kwargs, "static_argnums": tuple(n + 1 if n >= 0 else n for n in numbers)}


def remat(fn: Callable, **checkpoint_kwargs) -> Callable:
    """``jax.checkpoint`` (rematerialization) for a function that may create
    variables; the variables are stored, only activations are recomputed.
    State is read and assigned as outside.

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
            carried = StateCarry(frame)

            def checkpointed(state, *a, **kw):
                with carried.inside(state):
                    out = body(lifted.key_at(0), *a, **kw)
                    return out, carried.collect(state)

            lifted.start_run()
            out, state = jax.checkpoint(checkpointed, **_shift_static(checkpoint_kwargs))(
                carried.values(), *args, **kwargs
            )
            carried.finish(state)
            return out
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

    State is shared too: every example reads the same (unbatched) value,
    and an assignment must give one value for the whole batch, such as a
    mean over it (``jax.lax.pmean(x, axis_name)``). Assigning a value that
    differs between examples is ambiguous (which example's would the state
    keep?) and a ``LiftError`` naming the variable.
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
            carried = StateCarry(frame)

            def per_example(state, *a, **kw):
                index = jax.lax.axis_index(name) if split_rng else 0
                with carried.inside(state):
                    out = body(lifted.key_at(index), *a, **kw)
                    return out, carried.collect(state)

            if isinstance(in_axes, (tuple, list)):
                state_first = (None, *in_axes)
            else:
                state_first = (None, *(in_axes,) * len(args))

            def run(state_out_axes: Any) -> Callable:
                return jax.vmap(
                    per_example,
                    in_axes=state_first,
                    out_axes=(out_axes, state_out_axes),
                    axis_name=name,
                    axis_size=axis_size,
                )

            lifted.start_run()
            state = carried.values()
            try:
                out, state = run(None)(state, *args, **kwargs)
            except ValueError:
                _raise_batched_state(run, carried.names, state, args, kwargs)
                raise
            carried.finish(state)
            return out
        finally:
            lifted.end_run()

    return wrapped


def _raise_batched_state(
    run: Callable, names: list[str], state: dict, args: tuple, kwargs: dict
) -> None:
    """After ``js.vmap`` failed: a ``LiftError`` naming the first state
    variable assigned a value that differs between examples, if one is."""
    for name in names:
        axes = {other: None if other == name else 0 for other in names}
        try:
            jax.eval_shape(run(axes), state, *args, **kwargs)
        except ValueError:
            raise errors.LiftError(
                function=f"js.assign to variable {name} inside js.vmap",
                path=name,
                problem="the value differs between the examples, but state is shared by the whole "
                "batch: which example's value would it keep?",
                fix="assign one value for the batch (e.g. jax.lax.pmean(value, axis_name) with the "
                "vmap's axis_name), or return the per-example values and assign after the vmap",
            ) from None


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands) -> Any:
    """``jax.lax.cond`` whose branches may create variables.

    Both branches' variables are created in ``init`` (as TF1's ``tf.cond``
    builds both branches), whichever branch runs. State assigned in the
    taken branch is what the call reads afterwards.
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
        carried = StateCarry(frame)
        key = lifted.key_at(0)

        def branch(fn: Callable) -> Callable:
            body = lifted.body(fn)

            def run(state, *ops):
                with carried.inside(state):
                    out = body(key, *ops)
                    return out, carried.collect(state)

            return run

        true_branch, false_branch = branch(true_fun), branch(false_fun)
        lifted.start_run()
        out, state = jax.lax.cond(pred, true_branch, false_branch, carried.values(), *operands)
        carried.finish(state)
        return out
    finally:
        lifted.end_run()


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``jax.lax.while_loop`` whose condition and body may create variables
    (e.g. a greedy decoder that stops at end-of-sequence).

    ``js.next_rng_key()`` in the body gives a different key each iteration.
    State is carried from iteration to iteration, as in :func:`scan`; the
    condition may read it but not assign it.
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
        carried = StateCarry(frame)

        def counted_cond(loop):
            i, val, state = loop
            with carried.inside(state):
                out = cond_body(lifted.key_at(i), val)
                assigned = [n for n, v in carried.collect(state).items() if v is not state[n]]
            if assigned:
                raise errors.LiftError(
                    function=f"js.assign to variable {assigned[0]} in js.while_loop's cond_fun",
                    path=assigned[0],
                    problem="the condition's assignments would be lost (jax.lax.while_loop's condition "
                    "returns only a bool)",
                    fix="assign in body_fun",
                )
            return out

        def counted_body(loop):
            i, val, state = loop
            with carried.inside(state):
                val = loop_body(lifted.key_at(i), val)
                return i + 1, val, carried.collect(state)

        lifted.start_run()
        start = (jnp.int32(0), init_val, carried.values())
        _, val, state = jax.lax.while_loop(counted_cond, counted_body, start)
        carried.finish(state)
        return val
    finally:
        lifted.end_run()


class _Stack:
    """One ``layer_stack`` call: maps its variables to their layers."""

    def __init__(self, num_layers: int, prefix: str, layer_name: str):
        self.num_layers = num_layers
        self.prefix = prefix
        self.layer_name = layer_name
        # The same layer stack called again (a body traced again) has the
        # same key: it finds the variables by it.
        self.key = (num_layers, prefix, layer_name)
        self.stacked: dict[str, Any] = {}  # found in apply's tree
        self.made: dict[str, Any] = {}  # the stacked values, in creation order

    def layer_value(self, name: str, value: Any) -> Any:
        """A stacked value found in apply's tree: checked, and its layer 0
        handed to the body being discovered."""
        if value.ndim == 0 or value.shape[0] != self.num_layers:
            raise errors.ShapeMismatchError(
                path=name, stored=value.shape, num_layers=self.num_layers
            )
        self.stacked[name] = value
        return value[0]

    def unrolled_name(self, name: str, index: int) -> str:
        prefix = self.prefix + "/" if self.prefix else ""
        if not name.startswith(prefix):
            raise errors.LiftError(
                path=name,
                problem=f"is created inside js.layer_stack, which was called in scope '{self.prefix}', "
                "but the variable is not under that scope",
                fix="create the layers' variables under the scope layer_stack is called in (do not "
                "re-enter a captured scope from elsewhere)",
            )
        return f"{prefix}{self.layer_name}_{index}/{name[len(prefix) :]}"

    def adopt(self, frame: Frame, records: list[VariableRecord]) -> None:
        """The variables the discovery created become this stack's, stacked."""
        for record in records:
            self.unrolled_name(record.name, 0)  # every variable must be under the scope
            record.stack = self
            if record.sharding is not None:
                record.sharding = jax.sharding.PartitionSpec(None, *record.sharding)
            self.initialize(frame, record)

    def initialize(self, frame: Frame, record: VariableRecord) -> None:
        """Sets the stacked value, in the current trace: the tree's (apply),
        or the initial one (init)."""
        if record.init_spec is None:
            value = place(self.stacked[record.name], record.sharding)
        else:
            value = self._initial(frame, record)
        record.value = record.initial_value = self.made[record.name] = value
        record.shape = tuple(value.shape)

    def _initial(self, frame: Frame, record: VariableRecord) -> jax.Array:
        """The stacked initial value, born with the stacked spec: layer ``i``
        is initialized from its unrolled name's key. An initializer calling
        ``get_variable`` gets layer ``i``'s slice of what it obtains."""
        n = self.num_layers
        init_fn, shape, dtype, needs_key = record.init_spec
        if not needs_key:
            value = jnp.broadcast_to(_concrete(record, init_fn), (n, *shape))
            return place(value, record.sharding)
        keys = rng.variable_keys(frame, [self.unrolled_name(record.name, i) for i in range(n)])
        made = {}  # what was made before this variable
        for name, value in self.made.items():
            if name == record.name:
                break
            made[name] = value

        def layer(key: jax.Array, layer_values: dict) -> jax.Array:
            with _replaying(frame, layer_values):
                return run_initializer(record.name, init_fn, key, shape, dtype)

        def make(keys: jax.Array) -> jax.Array:
            return jax.vmap(layer)(keys, made)

        return initialize(make, keys, record.sharding)


def _per_layer_slices(num_layers: int, inputs: tuple) -> tuple:
    """Layer 0's slices of per-layer inputs, as shapes; a leaf without a
    leading axis of ``num_layers`` is a ``LayerBodyError``."""
    for leaf in jax.tree.leaves(inputs):
        shape = jnp.shape(leaf)
        if not shape or shape[0] != num_layers:
            raise errors.LayerBodyError(
                num_layers=num_layers,
                per_layer_inputs=True,
                problem=f"a per-layer input has shape {tuple(shape)}, but per-layer inputs need a "
                f"leading axis of size {num_layers} (layer i gets row i)",
                fix="stack the inputs by layer, or pass inputs shared by every layer as keyword "
                "arguments",
            )
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), inputs
    )


def _per_layer_items(num_layers: int, inputs: tuple) -> tuple:
    """Layer 0's items of per-layer lists, as shapes; an input that is not
    a list or tuple of ``num_layers`` items is a ``LayerBodyError``."""
    for items in inputs:
        if not isinstance(items, (list, tuple)) or len(items) != num_layers:
            raise errors.LayerBodyError(
                num_layers=num_layers,
                per_layer_inputs=True,
                problem=f"with per_layer_lists=True, a per-layer input is {_describe(items)}, "
                f"but per-layer inputs need to be lists of {num_layers} items (layer i gets "
                "item i)",
                fix="pass one item per layer, or pass inputs shared by every layer as keyword "
                "arguments",
            )
    return tuple(_abstract(items[0]) for items in inputs)


def _per_layer_lists(per_layer_lists: bool, with_per_layer_inputs: bool) -> bool:
    if per_layer_lists and not with_per_layer_inputs:
        raise errors.ArgumentError(
            function="js.layer_stack",
            problem="per_layer_lists=True is about per-layer inputs and outputs, which are off",
            fix="add with_per_layer_inputs=True",
        )
    return per_layer_lists


def _plain_layers(
    one_layer: Callable, x: Any, args: tuple, num_layers: int, per_layer: bool, lists: bool
) -> Any:
    """The layers outside ``js.transform`` (no variables to stack)."""
    if lists:
        outs = []
        for i in range(num_layers):
            x, y = one_layer(x, *(items[i] for items in args))
            outs.append(y)
        return x, outs
    if per_layer:
        return jax.lax.scan(lambda c, ys: one_layer(c, *ys), x, args)
    return jax.lax.scan(lambda c, _: (one_layer(c), None), x, length=num_layers)[0]


def _python_loop(step: Callable, loop: Any, xs: tuple, num_layers: int) -> tuple:
    """``lax.scan(step, loop, xs)`` as a Python loop over the layers, with
    per-layer lists for inputs and outputs (``per_layer_lists``): layer
    ``i`` reads static slices of the stacked params and state, and item
    ``i`` of each per-layer input. Returns ``(loop, (outs, layer_state))``,
    ``outs`` a list and the state stacked again."""
    _, params, layer_state, inputs = xs
    outs, states = [], []
    for i in range(num_layers):
        own = jax.tree.map(lambda a, i=i: a[i], (params, layer_state))
        loop, (y, state) = step(loop, (i, *own, tuple(items[i] for items in inputs)))
        outs.append(y)
        states.append(state)
    return loop, (outs, jax.tree.map(lambda *s: jnp.stack(s), *states))


def _check_layer_output(num_layers: int, per_layer: bool, x: Any, out: Any) -> None:
    """A ``LayerBodyError`` unless the layer body returned what the stack
    needs: its input's structure, shapes and dtypes (and a per-layer output
    with per-layer inputs)."""
    expected = "(x, out_i)" if per_layer else "x"
    if per_layer:
        if not isinstance(out, tuple) or len(out) != 2:
            raise errors.LayerBodyError(
                num_layers=num_layers,
                per_layer_inputs=True,
                problem=f"the layer body must return {expected}, the carry and this layer's output, "
                f"but it returned {_describe(out)}",
                fix="return a pair, e.g. (x, None) for no per-layer output",
            )
        out = out[0]

    def signature(tree: Any) -> Any:
        return jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), tree)

    if jax.tree.structure(x) != jax.tree.structure(out) or signature(x) != signature(out):
        raise errors.LayerBodyError(
            num_layers=num_layers,
            problem=f"the layer body must return {expected} with x of the structure, shapes and "
            "dtypes it was given, since layer i + 1 takes what layer i returns; it was given "
            f"{_describe(x)} and returned {_describe(out)}",
            fix="return the carry unchanged in shape (per-layer results go in a per-layer output: "
            "with_per_layer_inputs=True)",
        )


def _describe(tree: Any) -> str:
    def leaf(a: Any) -> str:
        return f"{jnp.result_type(a)}{list(jnp.shape(a))}" if hasattr(a, "shape") else repr(a)

    leaves, treedef = jax.tree.flatten(tree)
    if treedef.num_leaves == 1 and treedef.num_nodes == 1:
        return leaf(leaves[0])
    return f"{jax.tree.unflatten(treedef, [leaf(a) for a in leaves])}".replace("'", "")


def layer_stack(
    num_layers: int,
    *,
    with_per_layer_inputs: bool = False,
    unroll: int = 1,
    layer_name: str = "layer",
    per_layer_lists: bool = False,
) -> Callable:
    """Decorator: ``f(x, *args) -> x`` applied ``num_layers`` times as one scan.

    The variables ``f`` creates get a leading axis of size ``num_layers`` and
    keep their names (under the scope ``layer_stack`` is called in). The
    layers run as one ``jax.lax.scan``, so compile time does not grow with
    depth. Extra ``args`` are passed unchanged to every layer.

    With ``with_per_layer_inputs=True`` the layers take and give one slice
    each: ``f(x, *ys_i) -> (x, out_i)``, where every positional argument
    after ``x`` has a leading axis of ``num_layers`` (layer ``i`` gets row
    ``i``), keyword arguments go unchanged to every layer, and the stack
    returns ``(x, outs)`` with the outputs stacked by layer (a per-layer
    key/value cache, say). A body of the wrong shape is a
    ``LayerBodyError``.

    With ``per_layer_lists=True`` (and ``with_per_layer_inputs=True``) the
    per-layer inputs are lists of ``num_layers`` items (layer ``i`` gets item
    ``i``), the per-layer outputs come back as such a list, and the layers
    run as a Python loop over the stacked params (compile time grows with
    depth). Each layer's items are then arrays of their own, which XLA
    updates in place inside a loop's carry; stacked inputs and outputs are
    copied in and out of the stack at every call (a decoder's per-layer
    key/value caches, read and written at every output step).

    Layer ``i``'s slice is initialized exactly as the unrolled model's
    variable ``<scope>/layer_<i>/<name>`` would be, so
    ``js.unstack_layers(params)`` gives the params of the unrolled model
    ``for i in range(n): with js.variable_scope(f"layer_{i}"): x = f(x)``.
    State (``trainable=False``) variables created in ``f`` are stacked the
    same way, and each layer reads and assigns only its own slice (batch
    norm statistics per layer); state created outside the stack is carried
    from layer to layer.

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

    A layer stack can run inside ``js.scan``, ``js.while_loop``, ``js.cond``
    and the other lifted transforms (a decoder's layers inside its decoding
    loop), and lifted transforms can run inside the layers; a layer stack
    inside another layer stack's layers is a ``LiftError``.
    ``js.next_rng_key()`` gives each layer its own keys.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise errors.ArgumentError(
            function="js.layer_stack",
            argument="num_layers",
            problem=f"must be a positive int, got {num_layers!r}",
            fix="js.layer_stack(n) with n >= 1 (without layers, call nothing)",
        )

    lists = _per_layer_lists(per_layer_lists, with_per_layer_inputs)
    spec = _StackSpec(num_layers, with_per_layer_inputs, unroll, layer_name, lists)

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def stacked(x, *args, **kwargs):
            return _stack_call(spec, f, x, args, kwargs)

        return stacked

    return decorate


class _StackSpec(NamedTuple):
    """A ``layer_stack``'s arguments."""

    num_layers: int
    per_layer: bool  # with_per_layer_inputs
    unroll: int
    layer_name: str
    lists: bool  # per_layer_lists


def _stack_call(spec: _StackSpec, f: Callable, x: Any, args: tuple, kwargs: dict) -> Any:
    """One call of a layer stack: a plain scan outside a transform; inside,
    the layers' variables (discovered, or found again), then the layers."""
    num_layers = spec.num_layers
    frame = context.current_or_none()
    layer = functools.partial(f, **kwargs) if kwargs else f
    if spec.per_layer:
        slices = (_per_layer_items if spec.lists else _per_layer_slices)(num_layers, args)

        def one_layer(c, *ys):
            return layer(c, *ys)
    else:
        slices = ()

        def one_layer(c):
            return layer(c, *args)

    if frame is None:
        return _plain_layers(one_layer, x, args, num_layers, spec.per_layer, spec.lists)
    if frame.body.stack is not None:
        raise errors.LiftError(
            problem="js.layer_stack cannot be nested inside another js.layer_stack's layers",
            fix="stack the inner layers outside, or make them one layer of the outer stack; other "
            "lifted transforms (js.scan, js.while_loop, js.cond, ...) can hold a layer stack",
        )
    stack = _Stack(num_layers, frame.current_scope.name, spec.layer_name)
    lifted = _Lifted(frame, discover=True, stack=stack)
    try:
        created = _stack_variables(lifted, stack, spec, one_layer, x, slices)
        return _run_layers(lifted, spec, one_layer, created, x, args if slices else ())
    finally:
        lifted.end_run()


def _stack_variables(
    lifted: _Lifted, stack: _Stack, spec: _StackSpec, one_layer: Callable, x: Any, slices: tuple
) -> list[VariableRecord]:
    """The records of the stack's variables: discovered by tracing one layer
    (its output checked), or, traced again inside another lifted body,
    found by the stack's key."""
    frame = lifted.frame
    earlier = [r for r in frame.records.values() if _of(r, stack.key)]
    if not lifted.discover:
        return earlier
    # Called again in this call (in a second loop, say): the variables an
    # earlier call stacked reach this discovery as their layer slices.
    with _layer_slices(earlier):
        out = lifted.trace(one_layer, (_abstract(x), *slices))
    _check_layer_output(spec.num_layers, spec.per_layer, _abstract(x), out)
    created = lifted.created()
    stack.adopt(frame, created)
    return earlier + created


@contextlib.contextmanager
def _layer_slices(records: list[VariableRecord]):
    """While a layer is discovered: stacked ``records`` hold layer 0's slice."""
    stacked = [record.value for record in records]
    for record in records:
        record.value = record.value[0]
    try:
        yield
    finally:
        for record, value in zip(records, stacked, strict=True):
            record.value = value


def _run_layers(
    lifted: _Lifted,
    spec: _StackSpec,
    one_layer: Callable,
    created: list[VariableRecord],
    x: Any,
    ys: tuple,
) -> Any:
    """The layers as one ``lax.scan`` (a Python loop with ``per_layer_lists``)
    over their stacked variables, state and per-layer inputs ``ys``: each
    layer reads and assigns its own slice of the stacked state, and the state
    of the call is carried through."""
    frame = lifted.frame
    params = {r.name: r.value for r in created if r.trainable}
    layer_state = {r.name: r.value for r in created if not r.trainable}
    carried = StateCarry(frame, exclude=frozenset(layer_state))
    run = lifted.body(one_layer, layer_params=True)

    def step(loop, xs):
        c, state = loop
        i, layer_params, own_state, ys = xs
        values = {**state, **own_state}
        with carried.inside(values):
            out = run(lifted.key_at(i), layer_params, c, *ys)
            values = carried.collect(values)
        c, y = out if spec.per_layer else (out, None)
        state = {name: values[name] for name in state}
        own_state = {name: values[name] for name in own_state}
        return (c, state), (y, own_state)

    lifted.start_run()
    xs = (jnp.arange(spec.num_layers), params, layer_state, ys)
    loop = (x, carried.values())
    if spec.lists:
        (x, state), (outs, layer_state) = _python_loop(step, loop, xs, spec.num_layers)
    else:
        (x, state), (outs, layer_state) = jax.lax.scan(step, loop, xs, unroll=spec.unroll)
    carried.finish({**state, **layer_state})
    return (x, outs) if spec.per_layer else x


def _of(record: VariableRecord, key: tuple) -> bool:
    return record.stack is not None and record.stack.key == key


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
            function="js.unstack_layers",
            path=scalars[0],
            problem=f"variable {scalars[0]} is a scalar, so it has no leading layer axis",
            fix="pass the sub-tree of the scope js.layer_stack was called in (every leaf stacked, "
            "of shape [num_layers, ...])",
        )
    sizes = {jnp.shape(leaf)[0] for leaf in flat.values()}
    if len(sizes) != 1:
        raise errors.ArgumentError(
            function="js.unstack_layers",
            problem=f"the leaves disagree on the number of layers ({sorted(sizes)})",
            fix="pass only the sub-tree of the scope js.layer_stack was called in",
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
            function="js.stack_layers",
            problem=f"expects the keys {names[0]} ... {names[-1]} (layer_name={layer_name!r}), got "
            f"{sorted(tree)[:5]}{f'; missing {missing[0]}' if missing else ''}",
            fix="pass the sub-tree holding exactly the unrolled layers, numbered from 0",
        )
    layers = [trees.flatten(tree[name]) for name in names]
    for name, layer in zip(names, layers, strict=True):
        if layer.keys() != layers[0].keys():
            differ = sorted(layer.keys() ^ layers[0].keys())
            raise errors.ArgumentError(
                function="js.stack_layers",
                problem=f"{name} and {names[0]} do not hold the same variables "
                f"({', '.join(differ[:3])} is in one only)",
                fix="every layer must have the same variables",
            )
    return trees.unflatten({k: jnp.stack([layer[k] for layer in layers]) for k in layers[0]})
