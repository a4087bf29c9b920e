"""Variable scopes and op-name scopes, with TF1's semantics.

A :class:`VariableScope` carries a name prefix, a reuse flag and defaults for
``get_variable`` (initializer, regularizer, constraint, dtype, partitioner,
custom getter). ``variable_scope`` opens one; sub-scopes inherit everything.
A scope object belongs to one ``init``/``apply`` call and can be captured and
re-entered anywhere inside that call.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
from jax.extend import source_info_util
from jax.extend.core import find_top_trace

from jaxscope._src import context, errors, trees, variables
from jaxscope._src.scope_counts import BELOW, CountNode
from jaxscope._src.scope_settings import AUTO_REUSE, ROOT, Reuse, ScopeSettings


class VariableScope:
    """A variable scope: a name prefix, a reuse flag and variable defaults.

    Obtained from ``with js.variable_scope(...) as scope`` or
    ``js.get_variable_scope()``. Its ``set_*`` methods change the defaults of
    this scope for the rest of its life; ``reuse_variables()`` turns reuse on.
    ``scope.get_variable(...)`` uses this scope's name, reuse flag and
    defaults wherever it is called, without opening the scope.

    >>> def model():
    ...     with js.variable_scope("enc") as enc:
    ...         js.get_variable("w", [2])
    ...     with js.variable_scope(enc, reuse=True):
    ...         return js.get_variable("w", [2])
    >>> js.transform(model).init(0)["enc"]["w"].shape
    (2,)
    """

    __slots__ = (
        "_frame",
        "_name",
        "_settings",
        "_counts_node",
        "_op_path",
        # While entered, a scope is its own entry on the call's scope stack
        # (see _Entry): what its exit restores.
        "_owner",
        "_parent",
        "_named",
        "_old_op_path",
        "_mark",
        # Entered by name: the name it adds to its parent's; None otherwise.
        "_leaf",
        # Its nodes in apply's params tree and in the call's tree of names,
        # once a plain lookup has needed them (a call's scope objects belong
        # to it): see variables._plain_lookup.
        "_params_node",
        "_names_node",
    )

    def __init__(
        self,
        frame: context.Frame,
        name: str,
        settings: ScopeSettings = ROOT,
        original_name_scope: str = "",
    ):
        self._frame = frame
        self._name = name
        # Read by get_variable (jaxscope._src.variables) and by sub-scopes.
        self._settings = settings
        # This scope's node in the call's default_name counts, while it is open.
        self._counts_node: CountNode | None = None
        # The op-name path of original_name_scope, without its trailing "/".
        self._op_path = original_name_scope[:-1]
        self._parent = None  # the scope current when this one was entered
        self._mark = None  # entered as a captured scope: the counts mark to restore
        self._leaf = self._params_node = self._names_node = None

    def _change(self, **settings: Any) -> None:
        self._settings = dataclasses.replace(self._settings, **settings)

    def _check_alive(self) -> context.Frame:
        frame = self._frame
        if not frame.alive or context.current_or_none() is not frame:
            raise errors.StaleScopeError(scope=self._name)
        return frame

    @property
    def name(self) -> str:
        """The full name, ``""`` for the root scope."""
        return self._name

    @property
    def original_name_scope(self) -> str:
        """The op-name scope opened when this scope was first entered,
        with a trailing ``/`` (``""`` at the root)."""
        return f"{self._op_path}/" if self._op_path else ""

    @property
    def reuse(self) -> Reuse:
        """``False``, ``True`` or ``js.AUTO_REUSE``."""
        return self._settings.reuse

    @property
    def initializer(self) -> Any:
        return self._settings.initializer

    @property
    def regularizer(self) -> Callable | None:
        return self._settings.regularizer

    @property
    def constraint(self) -> Callable | None:
        return self._settings.constraint

    @property
    def custom_getter(self) -> Callable | None:
        return self._settings.custom_getter

    @property
    def dtype(self) -> Any:
        return self._settings.dtype

    @property
    def partitioner(self) -> Callable | None:
        return self._settings.partitioner

    def reuse_variables(self) -> None:
        """Turns reuse on for the rest of this scope (it cannot be turned
        off again, as in TF1)."""
        self._change(reuse=True)

    def set_initializer(self, initializer: Any) -> None:
        self._change(initializer=initializer)

    def set_regularizer(self, regularizer: Callable | None) -> None:
        self._change(regularizer=regularizer)

    def set_constraint(self, constraint: Callable | None) -> None:
        self._change(constraint=constraint)

    def set_custom_getter(self, custom_getter: Callable | None) -> None:
        _check_custom_getter(custom_getter, self._name)
        self._change(custom_getter=custom_getter)

    def set_dtype(self, dtype: Any) -> None:
        self._change(dtype=dtype, dtype_set=True)

    def set_partitioner(self, partitioner: Callable | None) -> None:
        self._change(partitioner=partitioner)

    def get_variable(
        self, name: str, shape=None, dtype=None, initializer=None, **kwargs
    ) -> jax.Array:
        """``js.get_variable`` in this scope; see :func:`jaxscope.get_variable`."""
        frame = self._check_alive()
        request = variables.resolve(
            self._name, self._settings, name, shape, dtype, initializer, **kwargs
        )
        return variables.obtain(frame, request)

    def __repr__(self) -> str:
        return f"VariableScope(name={self._name!r}, reuse={self._settings.reuse!r})"

    # As an entry of the call's scope stack (the protocol of _Entry).

    def _close(self, frame: context.Frame, exc_type: Any, exc: Any, tb: Any) -> None:
        """Restores what entering changed, innermost state first."""
        frame.current_scope = self._parent
        if self._mark is not None:  # TF1 restores the table as it was on entry
            frame.scope_counts.restore(self._mark)
        elif self._counts_node[BELOW] is not None:  # TF1 resets the counts below
            frame.scope_counts.forget_below(self._counts_node)
        _exit_op_scope(self, frame, exc_type, exc, tb)

    def _close_op_scope(self, exc: tuple = (None, None, None)) -> None:
        _close_op_scope(self, exc)

    def _describe(self) -> str:
        return f"js.variable_scope({self._name!r})"


_new_scope = object.__new__


def get_variable_scope() -> VariableScope:
    """The current variable scope (the root scope, named ``""``, at the top)."""
    return context.current("js.get_variable_scope").current_scope


def _check_custom_getter(custom_getter: Any, scope: Any) -> None:
    if custom_getter is not None and not callable(custom_getter):
        raise errors.ScopeArgumentError(
            function=f"js.variable_scope({scope!r})",
            argument="custom_getter",
            problem=f"must be callable, got {custom_getter!r}",
            fix="pass a function getter(getter, name, *args, **kwargs) that returns "
            "getter(name, *args, **kwargs), or None",
        )


def _compose_getters(inner: Callable | None, outer: Callable | None) -> Callable | None:
    """TF1's order: the inner getter receives a getter that calls the outer."""
    if inner is None or outer is None:
        return inner or outer

    def composed(getter, name, **kwargs):
        return inner(functools.partial(outer, getter), name, **kwargs)

    return composed


class _Entry:
    """One entry of a ``name_scope`` object, kept on the call's scope stack:
    what its exit restores. (A ``variable_scope`` entry is the
    ``VariableScope`` it opens, with the same methods.) The object itself
    keeps no per-entry state, so it can be entered again while open
    (recursion) or from several threads."""

    __slots__ = ("_owner", "_named", "_old_op_path")

    def __init__(self, owner: Any):
        self._owner = owner
        self._named = None  # the JAX name-stack context, when one was entered
        self._old_op_path = None  # the call's op-name path to restore, when opened

    def _close(self, frame: context.Frame, exc_type: Any, exc: Any, tb: Any) -> None:
        _exit_op_scope(self, frame, exc_type, exc, tb)

    def _close_op_scope(self, exc: tuple = (None, None, None)) -> None:
        _close_op_scope(self, exc)

    def _describe(self) -> str:
        return self._owner._describe(self)


def _exit_op_scope(entry: Any, frame: context.Frame, exc_type: Any, exc: Any, tb: Any) -> None:
    """Restores the op-name path an entry changed and exits its JAX name scope."""
    if entry._old_op_path is not None:
        frame.op_path = entry._old_op_path
    named = entry._named
    if named is not None:
        entry._named = None
        named.__exit__(exc_type, exc, tb)


def _close_op_scope(entry: Any, exc: tuple) -> None:
    """Exits an entry's JAX name scope (also of an entry its call left open)."""
    if entry._named is not None:
        named, entry._named = entry._named, None
        named.__exit__(*exc)


def _open_op_scope(frame: context.Frame | None, entry: Any, name: str) -> None:
    """Opens the op-name scope ``name`` for ``entry``, nested in the current
    one, or absolute where ``name`` ends with ``/`` (as in TF1).

    JAX's name stack is entered only while JAX traces: operations run one
    by one have no names to show, and an eager call skips its cost. The
    call's own op-name path (``original_name_scope``) is kept either way."""
    absolute = name[-1] == "/"
    if absolute:
        name = path = name[:-1]
    elif frame is not None and frame.op_path:
        path = f"{frame.op_path}/{name}"
    else:
        path = name
    if (frame is not None and not frame.body.eager) or context.tracing():
        if absolute:
            entry._named = source_info_util.set_name_stack(source_info_util.new_name_stack(name))
        else:
            entry._named = jax.named_scope(name)
        entry._named.__enter__()
    if frame is not None:
        entry._old_op_path = frame.op_path
        frame.op_path = path


class _Frameless(threading.local):
    """Entries of ``name_scope`` objects opened outside any transform call."""

    def __init__(self):
        self.entries: list[_Entry] = []


_frameless = _Frameless()


class _ScopeManager:
    """Enter and exit shared by ``variable_scope`` and ``name_scope``."""

    __slots__ = ()

    def _push(self, frame: context.Frame | None, entry: _Entry) -> None:
        (frame.scope_stack if frame is not None else _frameless.entries).append(entry)

    def __exit__(self, exc_type, exc, tb) -> None:
        frames = context.local.frames  # inline context.current_or_none(): every exit runs it
        frame = frames[-1] if frames else None
        stack = frame.scope_stack if frame is not None else _frameless.entries
        if stack and stack[-1]._owner is self:  # the usual case: exited in order
            stack.pop()._close(frame, exc_type, exc, tb)
            return
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i]._owner is self), None)
        if exc_type is not None:
            # An exception is unwinding: close what this entry holds open, and
            # never mask the exception.
            if index is not None:
                while len(stack) > index:
                    stack.pop()._close(frame, exc_type, exc, tb)
            return
        # Refused exits change nothing: the scopes can still exit in order.
        if index is None:
            raise errors.ScopeNestingError(scope=self._describe(None))
        raise errors.ScopeNestingError(
            scope=stack[index]._describe(),
            still_open=[entry._describe() for entry in stack[index + 1 :]],
        )


class name_scope(_ScopeManager):
    """Names the operations created inside it (via ``jax.named_scope``).

    The name shows in jaxprs, HLO metadata and profiler traces; variable names
    are unchanged. Unlike TF1's graph op names, names are not uniquified:
    entering ``"bar"`` twice names ops ``bar/...`` both times. A name ending
    in ``/``, such as a scope's ``original_name_scope``, re-enters that
    op-name scope absolutely, as in TF1. One object may be entered again
    while it is open: each entry is a fresh one. JAX's name stack is entered
    only while JAX traces (``jit``, ``make_jaxpr``, ``grad``, a lifted
    body): operations run one by one carry no names, so an eager call does
    not pay for them; the names seen by jaxscope (the value ``as`` binds, a
    scope's ``original_name_scope``) are the same either way.

    >>> with js.name_scope("bar"):
    ...     y = jnp.ones(2) + 1.0
    """

    __slots__ = ("_name",)

    def __init__(self, name: str):
        trees.check_name(
            name[:-1] if isinstance(name, str) and name[-1:] == "/" else name, "name scope"
        )
        self._name = name

    def _describe(self, entry: _Entry | None) -> str:
        return f"js.name_scope({self._name!r})"

    def __enter__(self) -> str:
        frame = context.current_or_none()
        entry = _Entry(self)
        _open_op_scope(frame, entry, self._name)
        self._push(frame, entry)
        if frame is None:
            return self._name if self._name.endswith("/") else self._name + "/"
        return frame.op_path + "/"


def _checked_arguments(
    name_or_scope: Any,
    default_name: str | None,
    reuse: Reuse | None,
    auxiliary_name_scope: Any,
    custom_getter: Callable | None,
) -> Reuse | None:
    """``variable_scope``'s arguments checked as TF1 checks them; returns
    ``reuse`` with ``False`` read as ``None`` (as in TF1, ``False`` cannot
    turn reuse off)."""
    if reuse is False:
        reuse = None
    elif reuse is not None and reuse is not True and reuse is not AUTO_REUSE:
        raise errors.ScopeArgumentError(
            function=f"js.variable_scope({name_or_scope!r})",
            argument="reuse",
            problem=f"must be True, False, None or js.AUTO_REUSE, got {reuse!r}",
            fix="pass one of those",
        )
    if name_or_scope is None:
        if default_name is None:
            raise errors.ArgumentTypeError(
                function="js.variable_scope",
                problem="a name_or_scope or a default_name is required",
                fix="js.variable_scope('layer') or js.variable_scope(None, default_name='layer')",
            )
        if reuse:
            raise errors.ScopeArgumentError(
                function=f"js.variable_scope(default_name={default_name!r})",
                argument="reuse",
                problem=f"cannot be {reuse!r}: a uniquified name is always new",
                fix="reuse by name (js.variable_scope('layer', reuse=True)) or by a captured scope "
                "object",
            )
        trees.check_name(default_name, "scope")
    elif isinstance(name_or_scope, str):
        trees.check_name(name_or_scope, "scope")
    elif not isinstance(name_or_scope, VariableScope):
        raise errors.ArgumentTypeError(
            function="js.variable_scope",
            argument="name_or_scope",
            problem=f"must be a str or a VariableScope, got {type(name_or_scope).__name__}",
            fix="js.variable_scope('name'), or re-enter a scope captured with "
            "`with js.variable_scope(...) as scope`",
        )
    if auxiliary_name_scope is not True and auxiliary_name_scope is not False:
        raise errors.ArgumentTypeError(
            function=f"js.variable_scope({name_or_scope!r})",
            argument="auxiliary_name_scope",
            problem=f"must be True or False, got {auxiliary_name_scope!r}",
            fix="pass a bool",
        )
    if custom_getter is not None:
        _check_custom_getter(custom_getter, name_or_scope)
    return reuse


class variable_scope(_ScopeManager):
    """Opens a variable scope: a context manager yielding a ``VariableScope``.

    Args:
        name_or_scope: a name (appended to the current scope's, like a
            directory) or a captured ``VariableScope`` to re-enter (its own
            name and settings, wherever it is entered).
        default_name: used when ``name_or_scope`` is None, uniquified as TF1
            does (``layer``, ``layer_1``, …).
        reuse: ``None`` inherits; ``True`` reuses here and below;
            ``js.AUTO_REUSE`` creates when missing; ``False`` is ``None``.
        initializer, regularizer, constraint, custom_getter, dtype,
            partitioner: defaults for ``get_variable`` here and below.
            ``custom_getter`` is called as TF1 calls it, entirely by keyword
            (``getter=``, ``name=``, ``shape=``, ``dtype=``, ...), and the
            ``getter`` it receives takes TF1's positional order ``(name,
            shape, dtype, initializer, regularizer, reuse, trainable, ...)``,
            so getters written for TF1 work unchanged.
        auxiliary_name_scope: whether to also open an op-name scope named by
            the scope's last name component (a bool).

    One ``variable_scope`` object may be entered again while it is open (by
    recursion, or from several threads): each entry is a fresh one, relative
    to the scope current at that entry.

    >>> def model(x):
    ...     with js.variable_scope("dense", initializer=js.initializers.zeros):
    ...         w = js.get_variable("w", [x.shape[-1], 2])
    ...     return x @ w
    >>> js.transform(model).init(0, jnp.ones((1, 3)))["dense"]["w"].shape
    (3, 2)

    A custom getter, here one storing float32 variables for a float16 model:

    >>> def float32_storage(getter, name, *args, dtype=None, trainable=True, **kwargs):
    ...     value = getter(name, *args, dtype=jnp.float32, trainable=trainable, **kwargs)
    ...     return value.astype(dtype) if trainable else value
    >>> def half(x):
    ...     with js.variable_scope("fp16", dtype=jnp.float16, custom_getter=float32_storage):
    ...         return x @ js.get_variable("w", [x.shape[-1], 2])
    >>> f = js.transform(half)
    >>> params = f.init(0, jnp.ones((1, 3), jnp.float16))
    >>> params["fp16"]["w"].dtype, f.apply(params, jnp.ones((1, 3), jnp.float16)).dtype
    (dtype('float32'), dtype('float16'))
    """

    __slots__ = (
        "_name_or_scope",
        "_default_name",
        "_reuse",
        "_changes",
        "_custom_getter",
        "_inherits_all",
        "_auxiliary",
    )

    def __init__(
        self,
        name_or_scope: str | VariableScope | None = None,
        default_name: str | None = None,
        *,
        reuse: Reuse | None = None,
        initializer: Any = None,
        regularizer: Callable | None = None,
        constraint: Callable | None = None,
        custom_getter: Callable | None = None,
        dtype: Any = None,
        partitioner: Callable | None = None,
        auxiliary_name_scope: bool = True,
    ):
        self._name_or_scope = name_or_scope
        self._default_name = default_name
        self._custom_getter = custom_getter
        self._auxiliary = auxiliary_name_scope
        if (
            reuse is custom_getter is initializer is regularizer is constraint is None
            and partitioner is dtype is None
            and auxiliary_name_scope is True
            and type(name_or_scope) is str
            and name_or_scope in trees.VALID_NAMES
        ):  # the usual case: a name found valid before, nothing else to check
            self._reuse = None
            self._changes = _NO_CHANGES
            self._inherits_all = True  # the entered scope shares its parent's settings
            return
        self._reuse = _checked_arguments(
            name_or_scope, default_name, reuse, auxiliary_name_scope, custom_getter
        )
        # The settings given, as keywords for dataclasses.replace on entering.
        self._changes = _given_settings(
            initializer=initializer,
            regularizer=regularizer,
            constraint=constraint,
            partitioner=partitioner,
            dtype=dtype,
        )
        self._inherits_all = not self._changes and custom_getter is None and self._reuse is None

    def __enter__(self) -> VariableScope:
        frames = context.local.frames  # inline context.current_or_none(): every entry runs it
        if not frames:
            context.current("js.variable_scope")  # raises
        frame = frames[-1]
        parent = frame.current_scope
        target = self._name_or_scope
        if type(target) is not str and isinstance(target, VariableScope):
            scope = self._captured(frame, target)
            op_name = scope._name.rpartition("/")[2]
        else:  # by name, or a numbered default name
            scope = _new_scope(VariableScope)
            counts = frame.scope_counts
            parent_node = parent._counts_node
            if parent_node is None:  # the root, or a scope made by a template
                parent_node = parent._counts_node = counts.node(parent._name)
            if target is None:
                target = counts.unique_name(self._default_name, parent_node)
            scope._frame = frame
            scope._name = f"{parent._name}/{target}" if parent._name else target
            scope._settings = (
                parent._settings if self._inherits_all else self._scope_settings(parent._settings)
            )
            scope._counts_node = counts.open(target, parent_node)
            scope._mark = scope._params_node = scope._names_node = None
            scope._leaf = op_name = target
        scope._owner = self
        scope._parent = parent
        if self._auxiliary and op_name:
            op_path = scope._old_op_path = frame.op_path
            path = frame.op_path = f"{op_path}/{op_name}" if op_path else op_name
            if frame.body.eager and find_top_trace(None) is context.EAGER:  # see _open_op_scope
                scope._named = None
            else:
                scope._named = named = jax.named_scope(op_name)
                named.__enter__()
        else:
            scope._named = scope._old_op_path = None
            path = frame.op_path
        if scope._mark is None:  # entered by name: its op-name scope is the one opened
            scope._op_path = path
        frame.current_scope = scope
        frame.scope_stack.append(scope)
        return scope

    def _captured(self, frame: context.Frame, target: VariableScope) -> VariableScope:
        """A copy of the captured scope ``target``, counted, with a mark to
        restore the count table to on exit."""
        target._check_alive()
        settings = target._settings
        if not self._inherits_all:
            settings = self._scope_settings(settings)
        scope = VariableScope(frame, target._name, settings)
        scope._op_path = target._op_path
        counts = frame.scope_counts
        scope._counts_node = counts.open(target._name)
        scope._mark = counts.mark()  # after the count, as TF1 snapshots it
        return scope

    def _describe(self, entry: Any = None) -> str:
        target = self._name_or_scope
        if isinstance(target, VariableScope):
            target = target.name
        return f"js.variable_scope({target if target is not None else self._default_name!r})"

    def _scope_settings(self, inherited: ScopeSettings) -> ScopeSettings:
        """The entered scope's settings: ``inherited`` (the parent's, or the
        captured scope's own) with this call's arguments in their place; a
        custom getter composes with the inherited one."""
        reuse = self._reuse or inherited.reuse
        if not self._changes and self._custom_getter is None and reuse is inherited.reuse:
            return inherited  # reuse asked for where it is on already
        changes = self._changes
        if self._custom_getter is not None:
            getter = _compose_getters(self._custom_getter, inherited.custom_getter)
            changes = {**changes, "custom_getter": getter}
        return dataclasses.replace(inherited, reuse=reuse, **changes)


_NO_CHANGES: dict[str, Any] = {}  # shared, never changed


def _given_settings(**settings: Any) -> dict[str, Any]:
    """The settings given to ``variable_scope`` (those not None), as
    keywords of ``ScopeSettings``; a given dtype counts as set."""
    given = {name: value for name, value in settings.items() if value is not None}
    if not given:
        return _NO_CHANGES
    if "dtype" in given:
        given["dtype_set"] = True
    return given
