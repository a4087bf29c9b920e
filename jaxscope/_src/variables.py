"""``get_variable``: creation, reuse and lookup of named variables.

During ``init`` creating a variable inserts its initial value into the call's
records; during ``apply`` it looks the value up in the given tree. Both modes
share one code path for every check (reuse flags, names, shapes, dtypes), so
a program raises the same errors in both.
"""

from __future__ import annotations

import enum
import inspect
import operator
import sys
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import find_top_trace

from jaxscope._src import context, errors, rng, trees
from jaxscope._src import initializers as inits
from jaxscope._src import sharding as sharding_lib
from jaxscope._src.context import Mode, VariableRecord
from jaxscope._src.scope_settings import AUTO_REUSE, Reuse, ScopeSettings

_dtype_cache: dict[Any, np.dtype] = {}
_FLOAT32 = np.dtype(np.float32)
_APPLY = Mode.APPLY
_local = context.local
_caller = context.caller_location
_PACKAGE = context.PACKAGE_DIR
_VALID_NAMES = trees.VALID_NAMES  # emptied when full, never replaced
# Types seen to be arrays (jax.Array, tracers, numpy), so that the common
# leaf skips the isinstance checks, which cost about a microsecond each; and
# those of them that are jax.Arrays (tracers too), whose ``aval`` holds the
# shape and dtype (read there by the plain lookup, a step shorter).
_ARRAY_TYPES: set[type] = set()
_JAX_ARRAY_TYPES: set[type] = set()


def canonical_dtype(dtype: Any) -> np.dtype:
    """The dtype JAX stores for ``dtype`` (float64 is float32 without x64)."""
    try:
        return _dtype_cache[dtype]
    except (KeyError, TypeError):
        canonical = jax.dtypes.canonicalize_dtype(jnp.dtype(dtype))
        try:
            _dtype_cache[dtype] = canonical
        except TypeError:
            pass
        return canonical


def _concrete_array(name: str, value: Any, dtype: Any) -> jax.Array:
    """A concrete initializer as an array: Python floats are float32 and ints
    int32 (as in TF1), arrays keep their dtype, an explicit dtype casts."""
    try:
        if dtype is not None:
            return jnp.asarray(value, canonical_dtype(dtype))
        if hasattr(value, "dtype"):
            return jnp.asarray(value)
        array = np.asarray(value)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int32)
        return jnp.asarray(array)
    except (TypeError, ValueError) as e:
        # TF1 raises TypeError for a value of the wrong type (a dict) and
        # ValueError for a ragged nested list; so do we.
        error = errors.ArgumentTypeError if isinstance(e, TypeError) else errors.InitializerError
        raise error(
            path=name,
            problem=f"has an initializer value that cannot be made an array ({e})",
            fix="pass a rectangular array, scalar or nested list, or an initializer function "
            "init(key, shape, dtype)",
        ) from e


def _concrete_dtype(value: Any, dtype: Any) -> np.dtype:
    """The dtype :func:`_concrete_array` gives ``value``, without making it."""
    if dtype is not None:
        return canonical_dtype(dtype)
    if hasattr(value, "dtype"):
        return canonical_dtype(value.dtype)
    kind = np.asarray(value).dtype.kind
    return _FLOAT32 if kind == "f" else np.dtype(np.int32) if kind in "iu" else np.dtype(bool)


class _ConcreteInit:
    """A concrete initializer value as an initializer (it ignores the key)."""

    def __init__(self, name: str, value: Any, dtype: Any):
        self.name, self.value, self.dtype = name, value, dtype

    def __call__(self, key, shape, dtype) -> jax.Array:
        del key, shape, dtype
        return _concrete_array(self.name, self.value, self.dtype)


class VariableSynchronization(enum.Enum):
    """TF1's ``tf.VariableSynchronization``, for custom getters written for
    TF1: they receive ``synchronization=VariableSynchronization.AUTO`` (TF1's
    default); jaxscope ignores the value they pass on."""

    AUTO = 0
    NONE = 1
    ON_WRITE = 2
    ON_READ = 3


class VariableAggregation(enum.Enum):
    """TF1's ``tf.VariableAggregation``, for custom getters written for TF1:
    they receive ``aggregation=VariableAggregation.NONE`` (TF1's default);
    jaxscope ignores the value they pass on."""

    NONE = 0
    SUM = 1
    MEAN = 2
    ONLY_FIRST_REPLICA = 3


_new_request = tuple.__new__


class VariableRequest(NamedTuple):
    """One ``get_variable`` call resolved against its scope: the full name,
    and the scope's settings for what the call did not give. ``shape`` and
    ``trainable`` are as given (a custom getter receives them so)."""

    name: str
    shape: Any
    dtype: Any  # the explicit dtype, else the scope's (when a scope set one)
    initializer: Any
    regularizer: Callable | None
    reuse: Reuse
    trainable: Any
    constraint: Callable | None
    sharding: Any
    partitioner: Callable | None
    cast: bool  # an explicit dtype casts a concrete initializer
    getter: Callable | None  # the scope's custom getter, called first


def get_variable(
    name: str,
    shape: Any = None,
    dtype: Any = None,
    initializer: Any = None,
    *,
    regularizer: Callable | None = None,
    trainable: bool = True,
    constraint: Callable | None = None,
    sharding: Any = None,
) -> jax.Array:
    """Creates or reuses the variable ``name`` in the current scope.

    Its full name is the current scope's name, ``/``, and ``name`` (which may
    itself contain ``/``); it is the variable's path in the params tree. With
    the scope's ``reuse`` False the name must be new in this call; with
    ``reuse=True`` it must exist; with ``js.AUTO_REUSE`` it is created when
    missing. A reused variable is returned as the very same array object.

    Args:
        name: the variable's name relative to the current scope.
        shape: its shape; may be omitted with a concrete initializer, or on
            reuse (any stored shape is accepted).
        dtype: its dtype; defaults to the scope's, else float32.
        initializer: ``init(key, shape, dtype)`` or a concrete value (array,
            scalar, nested list) that also defines the shape. Defaults to
            the scope's initializer, else Glorot-uniform for floats and zeros
            for integers and bools.
        regularizer: ``regularizer(value) -> scalar | None``, collected by
            :func:`get_regularization_losses`.
        trainable: ``False`` puts the variable in ``state`` (needs
            ``js.transform_with_state``).
        constraint: ``constraint(value) -> value``, recorded for
            :func:`jaxscope.apply_constraints`.
        sharding: a ``PartitionSpec`` or a tuple of mesh axis names.

    Returns:
        The variable's value, a ``jax.Array`` (a tracer under ``jit``).

    >>> def model(x):
    ...     with js.variable_scope("dense"):
    ...         w = js.get_variable("w", [x.shape[-1], 4])
    ...         b = js.get_variable("b", [4], initializer=js.initializers.zeros)
    ...     return x @ w + b
    >>> params = js.transform(model).init(0, jnp.ones((1, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'dense': {'b': (4,), 'w': (3, 4)}}
    """
    frames = _local.frames  # context.current, inlined: every variable comes here
    if not frames:
        context.current(f"js.get_variable({name!r})")  # raises NoTransformError
    frame = frames[-1]
    scope = frame.current_scope
    if (
        frame.mode is _APPLY
        and trainable is True
        and sharding is None
        and type(name) is str
        and name in _VALID_NAMES
        and "/" not in name
        and scope._settings.plain
        and (initializer is None or callable(initializer))
    ):
        value = _plain_lookup(frame, scope, name, shape, dtype, regularizer, constraint)
        if value is not None:
            return value
    request = resolve(
        scope._name,
        scope._settings,
        name,
        shape,
        dtype,
        initializer,
        regularizer,
        trainable,
        constraint,
        sharding,
    )
    return obtain(frame, request)


def _plain_lookup(
    frame: context.Frame,
    scope: Any,
    name: str,
    shape: Any,
    dtype: Any,
    regularizer: Callable | None,
    constraint: Callable | None,
) -> jax.Array | None:
    """The plain case of ``apply``, in fewer steps: a valid name of one
    component (its caller checked that, and the scope: no custom getter,
    partitioner or concrete initializer), a list or tuple of ints as
    shape, a ``jax.Array`` of the asked shape and dtype in the params tree,
    no lifted body replaying or discovering. Checked as :func:`obtain`
    checks it; ``None``, having changed nothing, where anything is unusual:
    :func:`obtain` then decides, and raises."""
    body = frame.body
    if (
        body.replay is not None
        or body.stack is not None
        or (shape is not None and (shape := _plain_shape(shape)) is None)
    ):
        return None
    settings = scope._settings
    reuse = settings.reuse
    dtype = settings.dtype if dtype is None and settings.dtype_set else dtype
    scope_name = scope._name
    full = f"{scope_name}/{name}" if scope_name else name
    records = frame._records
    record = records.get(full)
    if record is not None:  # obtained earlier in this call: a reuse
        return _plain_reuse(record, reuse, shape, dtype)
    # A creation (AUTO_REUSE's too) is checked as init checks it, asking for
    # float32 by default.
    if reuse is not True and (
        find_top_trace(None) is not body.trace() or (not reuse and shape is None)
    ):
        return None
    dtype = _FLOAT32 if dtype is None and not reuse else dtype
    params = scope._params_node
    if params is None and (params := _scope_params(frame, scope)) is None:
        return None
    value = params.get(name)
    if type(value) not in _JAX_ARRAY_TYPES:  # numpy leaves take the full path
        return None
    aval = value.aval
    value_shape, value_dtype = aval.shape, aval.dtype
    if (shape is not None and value_shape != shape) or (dtype is not None and value_dtype != dtype):
        return None
    if frame.names_complete and not _plain_claim(frame, scope, name, full):
        return None  # else the call's first claim enters the name (see _claim)
    caller = sys._getframe(2)  # get_variable's caller: the user's code, or a jaxscope layer
    code = caller.f_code
    if code.co_filename.startswith(_PACKAGE):
        origin = _caller(caller)
    else:
        origin = (code, caller.f_lasti)  # made a Location with the record
    constraint = settings.constraint if constraint is None else constraint
    records[full] = (value, value_shape, value_dtype, origin, constraint)
    frame.found.append(full)
    if regularizer is not None or (regularizer := settings.regularizer) is not None:
        frame.regularizers.append((full, regularizer))
    return value


def _plain_claim(frame: context.Frame, scope: Any, name: str, full: str) -> bool:
    """Claims a plain lookup's name in the call's tree of names, once the
    tree is complete; ``False``, having changed nothing, for a conflict or a
    name being created (:func:`obtain` says which)."""
    names = scope._names_node
    if names is None and (names := _scope_names_node(frame, scope, full)) is None:
        return False
    if name in names:
        return False
    names[name] = full
    return True


def _plain_reuse(record: Any, reuse: Reuse, shape: tuple | None, dtype: Any) -> Any:
    """A name obtained earlier in the call (its record, or the tuple a plain
    lookup keeps), on the plain path: its value where reuse is on and it
    has the asked shape and dtype, else ``None``."""
    value = record[0] if type(record) is tuple else record.value
    if not reuse or (shape is not None and value.shape != shape):
        return None
    return value if dtype is None or value.dtype == dtype else None


def _plain_shape(shape: Any) -> tuple[int, ...] | None:
    """``shape`` as a tuple where it is a list or tuple of non-negative ints."""
    if type(shape) is tuple or type(shape) is list:
        for d in shape:
            if type(d) is not int or d < 0:
                return None
        return tuple(shape)
    return None


def _unknown_chain(scope: Any, slot: str) -> tuple[Any, list]:
    """The scopes entered by name from ``scope`` outwards that do not know
    their node ``slot`` yet, innermost first, and the scope beyond them:
    one that knows it, or one not entered by name."""
    chain = []
    while scope._leaf is not None and getattr(scope, slot) is None:
        chain.append(scope)
        scope = scope._parent
    return scope, chain


def _scope_params(frame: context.Frame, scope: Any) -> dict | None:
    """``scope``'s node in apply's params tree, kept by the scope (a call's
    scope objects belong to it); ``None`` where there is none. A scope
    entered by name finds it from its parent's in one step; others walk
    down by :func:`trees.indexed_subtree`."""
    leaf = scope._leaf
    if leaf is not None and (node := scope._parent._params_node) is not None:
        # The common case, the parent's node known: the walk below's one
        # step without its list (about 2% of an eager apply, measured).
        child = node.get(leaf)
        if type(child) is dict:
            scope._params_node = child
            return child
    outer, chain = _unknown_chain(scope, "_params_node")
    node = outer._params_node
    if node is None:
        node = outer._params_node = trees.indexed_subtree(frame.param_nodes, outer._name)
    for entered in reversed(chain):
        leaf = entered._leaf
        child = node.get(leaf) if node is not None else None
        if type(child) is not dict and "/" in leaf:  # a name of several components
            child = trees.indexed_subtree(frame.param_nodes, entered._name)
        if type(child) is not dict:
            return None
        entered._params_node = node = child
    return node


def _scope_names_node(frame: context.Frame, scope: Any, full: str) -> dict | None:
    """``scope``'s node in the call's tree of names, made where missing and
    kept by the scope. ``None`` where a variable holds a prefix of the
    scope's name (:func:`obtain` raises). A scope entered by name finds it
    from its parent's in one step; others by :func:`_scope_names`.

    A kept node always holds a name (the caller claims one in it at once),
    so :func:`_unclaim`, which takes out only nodes it leaves empty, never
    takes out a kept one."""
    leaf = scope._leaf
    if leaf is not None and (node := scope._parent._names_node) is not None and "/" not in leaf:
        child = node.get(leaf)  # as in _scope_params (hot once the tree is complete)
        if child is None:
            child = node[leaf] = {}
        if type(child) is dict:
            scope._names_node = child
            return child
        return None
    outer, chain = _unknown_chain(scope, "_names_node")
    node = outer._names_node
    if node is None:
        node = frame.name_nodes.get(outer._name)
        if node is None:
            node = _scope_names(frame, outer._name, full)
        outer._names_node = node
    for entered in reversed(chain):
        leaf = entered._leaf
        if "/" in leaf:  # a name of several components
            child = _scope_names(frame, entered._name, full)
        elif (child := node.get(leaf)) is None:
            child = node[leaf] = {}
        elif type(child) is not dict:
            return None
        entered._names_node = node = child
    return node


def resolve(
    scope_name: str,
    settings: ScopeSettings,
    name: str,
    shape: Any = None,
    dtype: Any = None,
    initializer: Any = None,
    regularizer: Callable | None = None,
    trainable: bool = True,
    constraint: Callable | None = None,
    sharding: Any = None,
) -> VariableRequest:
    """The request of ``get_variable(name, ...)`` in the scope ``scope_name``
    with ``settings``: its full name, and the settings for what it omits."""
    if type(name) is not str or name not in trees.VALID_NAMES:
        trees.check_name(name, scope=scope_name)
    cast = dtype is not None
    # tuple.__new__ skips NamedTuple's Python-level __new__: every variable
    # comes this way.
    return _new_request(
        VariableRequest,
        (
            f"{scope_name}/{name}" if scope_name else name,
            shape,
            dtype if cast or not settings.dtype_set else settings.dtype,
            settings.initializer if initializer is None else initializer,
            settings.regularizer if regularizer is None else regularizer,
            settings.reuse,
            trainable,
            settings.constraint if constraint is None else constraint,
            sharding,
            settings.partitioner,
            cast,
            settings.custom_getter,
        ),
    )


def _call_custom_getter(frame: context.Frame, request: VariableRequest) -> Any:
    """Calls ``getter`` as TF1 calls a custom getter: entirely by keyword,
    with TF1's keywords (those meaning nothing here as TF1's defaults) and
    ``sharding``; ``constraint`` and ``sharding`` only where the getter
    takes them or ``**kwargs``, as TF1 does for ``constraint``."""

    def true_getter(
        name,
        shape=None,
        dtype=None,
        initializer=None,
        regularizer=None,
        reuse=None,
        trainable=None,
        collections=None,
        caching_device=None,
        partitioner=None,
        validate_shape=True,
        use_resource=None,
        constraint=None,
        synchronization=VariableSynchronization.AUTO,
        aggregation=VariableAggregation.NONE,
        *,
        sharding=None,
    ):
        """TF1's ``_true_getter``: the same positional order and keywords."""
        del collections, caching_device, validate_shape, use_resource
        del synchronization, aggregation
        trees.check_name(name, "custom-getter variable")
        passed_on = VariableRequest(
            name,
            shape,
            dtype,
            initializer,
            regularizer,
            request.reuse if reuse is None else reuse,
            True if trainable is None else trainable,
            constraint,
            sharding,
            partitioner,
            request.cast or dtype is not request.dtype,  # a getter asking for a dtype casts too
            None,  # passed on: obtained as asked
        )
        return obtain(frame, passed_on)

    getter = request.getter
    return getter(**_getter_kwargs(getter, true_getter, request))


def _getter_kwargs(getter: Callable, true_getter: Callable, request: VariableRequest) -> dict:
    """The keywords TF1 passes a custom getter, in TF1's order."""
    kwargs = {
        "getter": true_getter,
        "name": request.name,
        "shape": request.shape,
        "dtype": request.dtype,
        "initializer": request.initializer,
        "regularizer": request.regularizer,
        "reuse": request.reuse,
        "trainable": request.trainable,
        "collections": None,
        "caching_device": None,
        "partitioner": request.partitioner,
        "validate_shape": True,
        "use_resource": None,
        "synchronization": VariableSynchronization.AUTO,
        "aggregation": VariableAggregation.NONE,
    }
    takes_constraint, takes_sharding = _optional_keywords(getter)
    if takes_constraint:
        kwargs["constraint"] = request.constraint
    if takes_sharding:
        kwargs["sharding"] = request.sharding
    return kwargs


_getter_keywords: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _optional_keywords(getter: Callable) -> tuple[bool, bool]:
    """Whether ``getter`` takes ``constraint`` and ``sharding`` (by name or
    through ``**kwargs``)."""
    try:
        return _getter_keywords[getter]
    except (KeyError, TypeError):
        pass
    try:
        params = inspect.signature(getter).parameters
    except (TypeError, ValueError):  # no signature (a builtin): pass everything
        found = (True, True)
    else:
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            found = (True, True)
        else:
            found = ("constraint" in params, "sharding" in params)
    try:
        _getter_keywords[getter] = found
    except TypeError:  # not weakly referenceable: compute again next time
        pass
    return found


def obtain(frame: context.Frame, request: VariableRequest) -> jax.Array:
    """Looks the variable up or creates it (through the scope's custom
    getter, if it has one), checked as TF1 checks it, and records it: the
    same checks in init and apply.

    This is the trace path of every variable: keep it to dict lookups and
    comparisons (see benchmarks/profile_trace.py).
    """
    if request.getter is not None:
        return _call_custom_getter(frame, request)
    replay = frame.body.replay
    if replay is not None:
        return _replayed(frame, replay, request.name)
    name = request.name
    trainable = request.trainable
    if trainable is not True:
        trainable = bool(trainable)
    shape = request.shape
    if shape is not None:
        shape = _as_shape(name, shape)
    record = frame.records.get(name)
    if record is not None:
        return _reused(record, request, shape)
    lookup = _plan(frame, request, trainable)
    _claim(frame, name)  # a failure below leaves the name free again
    try:
        if lookup is not None:
            return _looked_up(frame, request, shape, *lookup)
        return _created(frame, request, shape, trainable)
    except BaseException:
        _unclaim(frame, name)
        raise


def _reused(record: VariableRecord, request: VariableRequest, shape: Any) -> jax.Array:
    """A name obtained earlier in this call: a reuse, checked against it."""
    name = request.name
    if not request.reuse:
        raise errors.VariableExistsError(path=name, created_at=str(record.origin))
    _check_stored(name, record.value, shape, request.dtype)
    if request.sharding is not None or request.partitioner is not None:
        _check_reused_sharding(name, record, request.sharding, request.partitioner)
    return record.value


def _plan(frame: context.Frame, request: VariableRequest, trainable: bool) -> tuple | None:
    """How a name new to this call is obtained, decided before it is
    claimed: ``None`` to create it, else ``(found, dtype)`` to look it up in
    apply's tree asking for ``dtype`` (``found`` now for ``reuse=True``, so
    that a missing name is reported before a conflicting one)."""
    name = request.name
    if request.reuse is True:
        if frame.mode is Mode.INIT:
            raise errors.VariableMissingError(path=name)
        return _lookup(frame, name, trainable=None), request.dtype
    # A creation: checked identically in init and apply. (Frame.in_outer_trace,
    # inlined: every new name comes here.)
    if find_top_trace(None) is not frame.body.trace():
        raise errors.RawTransformError(path=name)
    if not trainable and not frame.allow_state:
        raise errors.StateInStatelessTransformError(path=name)
    if request.reuse is AUTO_REUSE and frame.mode is Mode.APPLY:
        # Found in apply's tree, as a reuse, asking for the dtype init's
        # creation would have given it.
        return None, _creation_dtype(request)
    return None


def _creation_dtype(request: VariableRequest) -> Any:
    """The dtype a creation would give the variable, where known before it
    (a concrete initializer's), else the dtype asked for."""
    initializer = request.initializer
    if initializer is not None and not callable(initializer):
        return _concrete_dtype(initializer, request.dtype if request.cast else None)
    return request.dtype


def _looked_up(
    frame: context.Frame, request: VariableRequest, shape: Any, found: tuple | None, dtype: Any
) -> jax.Array:
    """A reuse found in apply's tree: either tree; the stored shape and
    dtype are accepted unless asked for."""
    name = request.name
    value, in_params = _lookup(frame, name, trainable=None) if found is None else found
    _check_stored(name, value, shape, dtype)
    sharding = request.sharding
    if sharding is None and request.partitioner is not None:
        sharding = _partition(name, request.partitioner, tuple(value.shape), value.dtype)
    spec = sharding_lib.as_spec(name, sharding)
    return _record(frame, request, value, tuple(value.shape), value.dtype, in_params, spec, None)


def _created(
    frame: context.Frame, request: VariableRequest, shape: Any, trainable: bool
) -> jax.Array:
    """A creation: in init the initial value, in apply the value in the
    tree its trainable flag names; both checked identically."""
    name, initializer = request.name, request.initializer
    initial = None
    if initializer is not None and not callable(initializer):
        initial = _concrete_initial(request, shape)
        shape, dtype = initial.shape, initial.dtype
    elif shape is None:
        raise errors.InitializerError(
            path=name,
            problem="has no shape",
            fix="give shape=... or a concrete initializer value (an array, scalar or nested list)",
        )
    else:
        dtype = _FLOAT32 if request.dtype is None else _valid_dtype(name, request.dtype)
    sharding = request.sharding
    if sharding is not None or request.partitioner is not None:
        sharding = _creation_sharding(request, shape, dtype)
    if frame.mode is Mode.INIT:
        value, init_spec = _initialized(frame, request, initial, shape, dtype, sharding)
    else:  # apply: the value in the tree its trainable flag names
        value = _lookup(frame, name, trainable=trainable)[0]
        _check_stored(name, value, shape, dtype)
        if sharding is not None:  # read with its spec: gradients keep the layout
            value = sharding_lib.place(value, sharding)
        init_spec = None
    # The value has the shape and dtype asked for (checked on the way).
    return _record(frame, request, value, shape, dtype, trainable, sharding, init_spec)


def _concrete_initial(request: VariableRequest, shape: Any) -> jax.Array:
    """A concrete initializer's value, whose shape must agree with one given."""
    initial = _concrete_array(
        request.name, request.initializer, request.dtype if request.cast else None
    )
    if shape is not None and initial.shape != shape:
        raise errors.InitializerError(
            path=request.name,
            problem=f"has an initializer value that has shape {initial.shape}, but shape {shape} "
            "was given",
            fix="make them agree, or omit shape",
        )
    return initial


def _creation_sharding(request: VariableRequest, shape: tuple, dtype: Any) -> Any:
    """The spec asked for, else the scope's partitioner's; checked against
    the active mesh."""
    name, sharding = request.name, request.sharding
    if sharding is not None:
        sharding = sharding_lib.as_spec(name, sharding)
    elif request.partitioner is not None:
        sharding = _partition(name, request.partitioner, shape, dtype)
    if sharding is not None:
        sharding_lib.check(name, sharding, shape, sharding_lib.active_mesh())
    return sharding


def _initialized(
    frame: context.Frame,
    request: VariableRequest,
    initial: jax.Array | None,
    shape: tuple,
    dtype: Any,
    sharding: Any,
) -> tuple[jax.Array, tuple]:
    """init's value of a new variable, placed with its sharding, and the
    ``init_spec`` that makes it again (see ``VariableRecord``)."""
    name = request.name
    if initial is not None:
        init_fn = _ConcreteInit(name, request.initializer, request.dtype if request.cast else None)
        return sharding_lib.place(initial, sharding), (init_fn, shape, dtype, False)
    init_fn = inits.default_for(dtype) if request.initializer is None else request.initializer
    value = initial_value(frame, name, init_fn, shape, dtype, sharding)
    return value, (init_fn, shape, dtype, True)


def initial_value(
    frame: context.Frame, name: str, init_fn: Callable, shape: tuple, dtype: Any, sharding: Any
) -> jax.Array:
    """Variable ``name``'s initial value from its initializer function, in
    the current trace, born with its sharding."""
    value = _staged_initial(frame, name, init_fn, shape, dtype, sharding)
    if value is None:
        key = _init_key(frame, name, init_fn)
        value = sharding_lib.initialize(
            lambda k: run_initializer(name, init_fn, k, shape, dtype), key, sharding
        )
    return value


def _init_key(frame: context.Frame, name: str, init_fn: Callable) -> jax.Array | None:
    """The variable's init key; none for a built-in initializer that ignores
    it (init needs an rng all the same)."""
    if inits.keyless(init_fn):
        rng.variables_key(frame, name)
        return None
    return rng.variable_key(frame, name)


def _staged_initial(
    frame: context.Frame, name: str, init_fn: Callable, shape: tuple, dtype: Any, sharding: Any
) -> jax.Array | None:
    """While init is traced (``jax.jit``, ``jax.eval_shape``): a pure built-in
    initializer's value as one staged call (``inits.staged``), the same
    value at a fraction of the trace time. ``None`` when init runs eagerly
    (staging there could change the rounding), for other initializers, and
    when the staged call fails or returns another shape or dtype: the plain
    path then raises the error that names the variable."""
    base = rng.variables_key(frame, name)
    staged = inits.staged(init_fn, shape, dtype) if isinstance(base, jax.core.Tracer) else None
    if staged is None:
        return None
    hi, lo = rng.name_hash(name)
    try:
        value = sharding_lib.initialize(
            lambda k: staged(k, np.uint32(hi), np.uint32(lo)), base, sharding
        )
    except Exception:
        return None
    return value if value.shape == shape and value.dtype == dtype else None


def _partition(name: str, partitioner: Callable, shape: tuple, dtype: Any) -> Any:
    """The scope's partitioner's spec; never asked for a scalar (as in TF1)."""
    if not shape:
        return None
    return sharding_lib.as_spec(name, partitioner(name, shape, dtype))


def _check_reused_sharding(name: str, record: VariableRecord, sharding: Any, partitioner) -> None:
    """A reuse asking for a sharding (explicit, or from the scope's
    partitioner) must ask for the stored one; asking for none accepts it."""
    if sharding is not None:
        asked = sharding_lib.as_spec(name, sharding)
    else:
        asked = _partition(name, partitioner, record.shape, record.dtype)
    if asked is not None and not sharding_lib.same_spec(asked, record.sharding):
        raise errors.ShardingError(
            path=name,
            problem=f"is reused with specified sharding {asked}, but found sharding "
            f"{record.sharding}",
            fix=f"ask for sharding {record.sharding} (or none) on reuse, or give the variable that "
            "sharding where it is created",
        )


def _as_shape(name: str, shape: Any) -> tuple[int, ...]:
    if type(shape) is tuple or type(shape) is list:  # fast path: plain ints
        for d in shape:
            if type(d) is not int or d < 0:
                break
        else:
            return tuple(shape)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    dims = None
    if not isinstance(shape, str):
        try:
            dims = tuple(operator.index(d) for d in shape)
        except jax.errors.TracerIntegerConversionError:
            raise errors.ArgumentTypeError(
                path=name,
                problem=f"has shape {list(shape)!r}, which holds a value traced by JAX (an int "
                "argument of a jitted or eval_shape'd function), but shapes must be static Python ints",
                fix="mark that argument static (jax.jit(f.init, static_argnums=...) or "
                "static_argnames=...), or take the size from an array's .shape",
            ) from None
        except TypeError:
            pass
    if dims is None:
        raise errors.ArgumentTypeError(
            path=name,
            problem=f"has shape {shape!r}, but a shape must be a sequence of non-negative ints",
            fix="e.g. shape=[3, 4]",
        )
    if any(d < 0 for d in dims):
        raise errors.InitializerError(
            path=name,
            problem=f"has shape {shape!r}, but a shape must be a sequence of non-negative ints",
            fix="e.g. shape=[3, 4]",
        )
    return dims


def _valid_dtype(name: str, dtype: Any) -> np.dtype:
    try:
        return canonical_dtype(dtype)
    except TypeError:
        raise errors.ArgumentTypeError(
            path=name,
            problem=f"has dtype {dtype!r}, which is not a dtype",
            fix="e.g. dtype=jnp.float32",
        ) from None


def _initializer_problem(error: errors.InitializerError) -> str:
    """What an initializer's own ``InitializerError`` says, as a clause."""
    if error.function:
        return f"{error.function} {error.problem}"
    return f"variable {error.path} {error.problem}" if error.path else error.problem


def run_initializer(name: str, init_fn: Callable, key: Any, shape, dtype) -> jax.Array:
    """``init_fn(key, shape, dtype)``, checked to return that shape and dtype.

    An initializer that refuses the shape or dtype (``orthogonal`` on a
    vector, a float-only distribution on ints) is an ``InitializerError``
    naming the variable."""
    try:
        value = init_fn(key, shape, dtype)
    except (errors.InitializerError, TypeError, ValueError, ArithmeticError) as e:
        if isinstance(e, errors.InitializerError):  # says what and the fix
            raise errors.InitializerError(
                path=name, problem=f"cannot be initialized: {_initializer_problem(e)}", fix=e.fix
            ) from e
        if isinstance(e, errors.ScopeError):
            raise  # e.g. an initializer's own get_variable call failed
        hint = (
            "; note that js.initializers.glorot_uniform, random_normal, ... are "
            "factories: call them, initializer=js.initializers.glorot_uniform()"
            if isinstance(e, TypeError)
            else ""
        )
        raise errors.InitializerError(
            path=name,
            problem=f"cannot be initialized: its initializer failed for shape {shape} and dtype "
            f"{dtype}: {e}",
            fix=f"pass an initializer init(key, shape, dtype) that supports them{hint}",
        ) from e
    if getattr(value, "shape", None) != shape or getattr(value, "dtype", None) != dtype:
        got = f"shape {getattr(value, 'shape', '?')} and dtype {getattr(value, 'dtype', type(value).__name__)}"
        raise errors.InitializerError(
            path=name,
            problem=f"cannot be initialized: its initializer returned {got}, but shape {shape} and "
            f"dtype {dtype} were asked for",
            fix="the initializer must follow JAX's convention init(key, shape, dtype) and return "
            "that shape and dtype (see js.initializers)",
        )
    return jnp.asarray(value)


def _claim(frame: context.Frame, name: str) -> None:
    """Enters ``name`` in the call's tree of names (its leaf holds the full
    name), or raises ``NameConflictError`` if it would be both a variable and
    a scope. Its scope's node comes from ``frame.name_nodes``: a new scope
    walks down from its nearest known ancestor, a known one not at all."""
    if not frame.names_complete:  # first enter the names of apply's plain lookups
        frame.names_complete = True
        for found in frame._records:  # all of them: only plain lookups skip the claim
            _claim(frame, found)
    scope, _, leaf = name.rpartition("/")
    node = frame.name_nodes.get(scope)
    if node is None:
        node = _scope_names(frame, scope, name)
    if leaf in node:
        _raise_conflict(frame, name)
    node[leaf] = name


def _scope_names(frame: context.Frame, scope: str, name: str) -> dict:
    """The node of ``scope`` in the call's tree of names, made where missing
    (and entered in ``frame.name_nodes``); a conflict if a variable holds
    one of its prefixes. Nothing is made before a conflict is found: only
    missing nodes are made, and they hold nothing yet."""
    nodes = frame.name_nodes
    missing = [scope]
    parent = scope.rpartition("/")[0]
    while (node := nodes.get(parent)) is None:
        missing.append(parent)
        parent = parent.rpartition("/")[0]
    for path in reversed(missing):
        part = path[path.rfind("/") + 1 :]
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif type(child) is str:
            _raise_conflict(frame, name)
        node = nodes[path] = child
    return node


def _unclaim(frame: context.Frame, name: str) -> None:
    """Takes back a :func:`_claim` whose ``get_variable`` failed: no leaf or
    sub-tree of the failed name remains."""
    path = [frame.names]
    *scopes, leaf = name.split("/")
    for part in scopes:
        path.append(path[-1][part])
    del path[-1][leaf]
    for depth in range(len(scopes), 0, -1):
        if path[depth]:
            break
        del path[depth - 1][scopes[depth - 1]]
        del frame.name_nodes["/".join(scopes[:depth])]


def _raise_conflict(frame: context.Frame, name: str) -> None:
    node, walked = frame.names, []
    for part in name.split("/"):
        node = node[part]
        walked.append(part)
        if type(node) is str:
            break
    prefix = "/".join(walked)
    if type(node) is not str:
        below = sorted(_names_below(node))[:3]
        raise errors.NameConflictError(path=name, below=below)
    record = frame.records.get(prefix)
    if prefix == name:  # claimed, not yet recorded: its initializer asks for it
        raise errors.VariableExistsError(path=name, being_created=True)
    raise errors.NameConflictError(
        path=name, variable=prefix, created_at=str(record.origin) if record is not None else ""
    )


def _names_below(node: dict) -> list[str]:
    names, stack = [], [node]
    while stack:
        for child in stack.pop().values():
            if type(child) is str:
                names.append(child)
            else:
                stack.append(child)
    return names


def _lookup(frame: context.Frame, name: str, trainable: bool | None) -> tuple[Any, bool]:
    """Finds ``name`` in apply's trees; returns ``(value, is_trainable)``.

    ``trainable=None`` (a reuse) accepts either tree."""
    if trainable is not False:  # the common case first: an array in params
        scope, _, leaf = name.rpartition("/")
        node = frame.param_nodes.get(scope)
        if node is None:
            node = trees.indexed_subtree(frame.param_nodes, scope)
        value = node.get(leaf) if node is not None else None
        if type(value) in _ARRAY_TYPES:
            if frame.body.stack is not None:  # discovering a layer_stack body
                value = frame.body.stack.layer_value(name, value)
            return value, True
    for tree, is_param in ((frame.params, True), (frame.state, False)):
        if trainable is None or trainable is is_param:
            value = trees.lookup(tree, name, trees.MISSING)
            if value is not trees.MISSING:
                _check_leaf(name, value)
                if frame.body.stack is not None:  # discovering a layer_stack body
                    value = frame.body.stack.layer_value(name, value)
                return value, is_param
    elsewhere = trees.MISSING
    if trainable is not None:
        elsewhere = trees.lookup(frame.state if trainable else frame.params, name, trees.MISSING)
    if elsewhere is not trees.MISSING:
        here, there = ("params", "state") if trainable else ("state", "params")
        raise errors.VariableMissingError(
            path=name,
            problem=f"is asked for with trainable={trainable}, so it should be in {here}, but it is "
            f"in {there}",
            fix="pass the trees in the order apply(params, state, ...), or ask with the trainable "
            "flag it was created with",
        )
    given = [frame.params, frame.state]
    flat = trees.flat_keys(given)
    if flat:
        raise errors.VariableMissingError(
            path=name,
            problem="is not in the tree given to apply, which is flat: it has keys with '/' in them "
            f"({', '.join(map(repr, flat))}), as js.flatten or an .npz file gives, where apply "
            "wants the nested tree init returns",
            fix="pass js.unflatten(params) (and js.unflatten(state))",
        )
    near = trees.nearest_names(name, given)
    raise errors.VariableMissingError(path=name, in_apply=True, nearest=near)


def _check_leaf(name: str, value: Any) -> Any:
    if type(value) in _ARRAY_TYPES:
        return value
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        _ARRAY_TYPES.add(type(value))
        if isinstance(value, jax.Array):
            _JAX_ARRAY_TYPES.add(type(value))
    else:
        hint = " (jax.eval_shape's results only describe arrays)"
        raise errors.InvalidParamsError(
            path=name,
            problem=f"in the tree given to apply is a {type(value).__name__}, not an array",
            fix="pass the params tree that init returned (arrays at every leaf)"
            f"{hint if isinstance(value, jax.ShapeDtypeStruct) else ''}",
        )
    return value


def _check_stored(name: str, value: Any, shape, dtype) -> None:
    if shape is not None and value.shape != shape:
        raise errors.ShapeMismatchError(path=name, requested=shape, stored=value.shape)
    if dtype is not None and value.dtype != dtype:
        want = canonical_dtype(dtype)
        if value.dtype != want:
            raise errors.DtypeMismatchError(path=name, requested=want, stored=value.dtype)


def _replayed(frame: context.Frame, replay: dict, name: str) -> jax.Array:
    """A lifted body being re-traced gets the values found while its
    variables were discovered; every check already ran then."""
    value = replay.get(name)
    if value is None:
        record = frame.records.get(name)
        if record is None:
            raise errors.LiftError(
                path=name,
                problem="is obtained inside a lifted transform's body, but it was not obtained when the "
                "body was first traced: the body must obtain the same variables every time it is traced",
                fix="do not make get_variable calls depend on traced values",
            )
        value = record.value
    return value


def _record(
    frame: context.Frame,
    request: VariableRequest,
    value: jax.Array,
    shape: tuple[int, ...],
    dtype: Any,
    trainable: bool,
    sharding: Any,
    init_spec: tuple | None,
) -> jax.Array:
    """Enters the variable in the call's records (and its regularizer)."""
    name = request.name
    frame.records[name] = VariableRecord(
        name,
        value,
        shape,
        dtype,
        trainable,
        # Frames from here: _record, _created or _looked_up, obtain, and
        # get_variable, VariableScope.get_variable or a custom getter's
        # true_getter: the user's code is next.
        context.user_location(5),
        value,
        request.constraint,
        sharding,
        init_spec,
    )
    if request.regularizer is not None:
        frame.regularizers.append((name, request.regularizer))
    return value


def assign(name: str, value: Any) -> jax.Array:
    """Sets the ``trainable=False`` variable ``name`` (relative to the current
    scope) to ``value`` for the rest of the call.

    Later ``get_variable`` calls in the call return the new value, and
    ``TransformedWithState.apply`` returns it in ``new_state``. The variable
    must have been obtained with ``get_variable`` earlier in the call, and
    ``value`` must have its shape and dtype.

    >>> def counter():
    ...     n = js.get_variable("n", [], jnp.int32, trainable=False)
    ...     js.assign("n", n + 1)
    >>> f = js.transform_with_state(counter)
    >>> params, state = f.init(0)
    >>> f.apply(params, state)[1]["n"]
    Array(1, dtype=int32)
    """
    frame = context.current(f"js.assign({name!r})")
    trees.check_name(name, scope=frame.current_scope.name)
    full = trees.join(frame.current_scope.name, name)
    if not frame.in_outer_trace():
        raise errors.RawTransformError(path=full, assigned=True)
    record = frame.records.get(full)
    if record is None:
        raise errors.AssignError(
            path=full,
            problem="it has not been obtained in this call",
            fix="call js.get_variable(..., trainable=False) for it first",
        )
    if record.trainable:
        raise errors.AssignError(
            path=full,
            problem="it is trainable (a param). Only trainable=False variables (state) can be "
            "assigned",
            fix="create it with trainable=False and use js.transform_with_state",
        )
    if not isinstance(value, (jax.Array, np.ndarray, np.generic)):
        value = np.asarray(value)  # Python scalars and lists take the variable's dtype
        if not np.can_cast(value.dtype, record.dtype, "same_kind"):
            raise errors.AssignError(
                path=full,
                problem=f"it has dtype {record.dtype}, and the value {value.tolist()!r} is "
                f"{value.dtype.kind == 'f' and 'a float' or value.dtype}",
                fix=f"pass a value of dtype {record.dtype}",
            )
        value = jnp.asarray(value, record.dtype)
    shape = tuple(record.value.shape)  # inside a js.layer_stack: the layer's slice
    if tuple(value.shape) != shape or value.dtype != record.dtype:
        raise errors.AssignError(
            path=full,
            problem=f"it has shape {shape} and dtype {record.dtype}, the value has shape "
            f"{tuple(value.shape)} and dtype {value.dtype}",
            fix=f"reshape or cast the value (e.g. value.astype(jnp.{record.dtype}))",
        )
    record.value = value
    return value
