"""``make_template``: TF1's ``tf.compat.v1.make_template`` for jaxscope.

A template wraps a function so that its first call opens a uniquified
variable scope and creates the variables there, and every later call
re-enters that scope with ``reuse=True``. TF1 kept this state in the graph;
jaxscope has one per ``init`` or ``apply`` call, so a template keeps its
state per call: **each** ``init``/``apply`` **call starts afresh**, like
building a new TF1 graph. Within one call, the template's first call opens
its scope (``name``, ``name_1``, … as TF1 numbers them, in the scope current
at that call) and creates; later calls in the same call reuse, wherever they
are made. The template object holds no per-call scope, so one built once at
module level works in every later ``init`` and ``apply`` call.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

from jaxscope._src import context, errors, trees
from jaxscope._src.scopes import VariableScope, _compose_getters, variable_scope

__all__ = ["Template", "make_template"]


class _Call:
    """A template's state in one ``init``/``apply`` call (TF1's per-graph
    state): its scope, and whether its first call started and finished."""

    __slots__ = ("scope", "first_call", "created")

    def __init__(self, scope: VariableScope | None):
        self.scope = scope
        self.first_call = True
        self.created = False


class Template:
    """A function that creates its variables on its first call in an
    ``init``/``apply`` call and reuses them on every later one.

    Made by :func:`make_template`; see there.

    >>> t = js.make_template("dense", lambda x: x @ js.get_variable("w", [x.shape[-1], 2]))
    >>> params = js.transform(lambda x: t(x) + t(2 * x)).init(0, jnp.ones((1, 3)))
    >>> sorted(js.flatten(params)), t.variable_scope_name
    (['dense/w'], 'dense/')
    """

    def __init__(
        self,
        name: str,
        func: Callable,
        create_scope_now: bool = False,
        unique_name: str | None = None,
        custom_getter: Callable | None = None,
    ):
        if name is None:
            raise errors.ArgumentError(
                function="js.make_template",
                argument="name_",
                problem="cannot be None",
                fix="give the template's scope a name, js.make_template('layer', fn)",
            )
        trees.check_name(name, "template")
        if unique_name is not None:
            trees.check_name(unique_name, "template")
        if not callable(func):
            raise errors.ArgumentTypeError(
                function=f"js.make_template({name!r})",
                argument="func_",
                problem=f"must be callable, got {type(func).__name__}",
                fix=f"js.make_template({name!r}, fn, **kwargs)",
            )
        if custom_getter is not None and not callable(custom_getter):
            raise errors.ScopeArgumentError(
                function=f"js.make_template({name!r})",
                argument="custom_getter_",
                problem=f"must be callable, got {custom_getter!r}",
                fix="pass a function getter(getter, name, *args, **kwargs) that returns "
                "getter(name, *args, **kwargs), or None",
            )
        self._name = name
        self._func = func
        self._unique_name = unique_name
        self._custom_getter = custom_getter
        self._origin = context.user_location(2)
        self._calls: weakref.WeakKeyDictionary[context.Frame, _Call] = weakref.WeakKeyDictionary()
        self._last_scope_name: str | None = None
        # create_scope_now_: the scope fixed now, re-entered by every call.
        self._scope_now: VariableScope | None = None
        if create_scope_now:
            frame = context.current_or_none()
            if frame is None:  # no call to uniquify in: the name as given
                scope = VariableScope(None, unique_name or name)
                scope.set_custom_getter(custom_getter)
            else:  # as TF1: uniquified and counted in the current scope
                with variable_scope(
                    unique_name,
                    default_name=name,
                    custom_getter=custom_getter,
                    auxiliary_name_scope=False,
                ) as scope:
                    pass
                self._calls[frame] = _Call(scope)
            self._scope_now = scope
            self._last_scope_name = scope.name

    @property
    def name(self) -> str:
        """The name given to :func:`make_template`."""
        return self._name

    @property
    def func(self) -> Callable:
        """The wrapped function (with the keywords given to :func:`make_template`)."""
        return self._func

    @property
    def variable_scope(self) -> VariableScope | None:
        """The template's scope in the current ``init``/``apply`` call: None
        before its first call there (or, with ``create_scope_now_``, the
        scope fixed when it was made) and outside any call."""
        frame = context.current_or_none()
        if frame is None:
            return None
        call = self._call(frame, create=self._scope_now is not None)
        return None if call is None else call.scope

    @property
    def variable_scope_name(self) -> str | None:
        """The template's scope name with a trailing ``/`` (``"layer_1/"``),
        as TF1 gives it: in the current call, or, outside any call, in the
        latest call that opened it (None if none has), so that
        ``js.select(params, t.variable_scope_name)`` picks its variables."""
        if context.current_or_none() is not None:
            scope = self.variable_scope
            name = None if scope is None else scope.name
        else:
            name = self._last_scope_name
        return None if name is None else name + "/"

    @property
    def variables(self) -> dict[str, Any]:
        """The variables under the template's scope obtained in the current
        call, ``{full name: value}`` in creation order (``{}`` until its first
        call has returned). Only inside an ``init``/``apply`` call; outside,
        select them from the params: ``js.select(params, t.variable_scope_name)``."""
        return self._variables(None)

    @property
    def trainable_variables(self) -> dict[str, Any]:
        """:attr:`variables` that are params (``trainable=True``)."""
        return self._variables(True)

    @property
    def non_trainable_variables(self) -> dict[str, Any]:
        """:attr:`variables` that are state (``trainable=False``)."""
        return self._variables(False)

    def _variables(self, trainable: bool | None) -> dict[str, Any]:
        frame = context.current(f"template {self._name!r}'s variables")
        call = self._call(frame)
        if call is None or not call.created:
            return {}
        prefix = call.scope.name + "/"
        return {
            name: record.value
            for name, record in frame.records.items()
            if name.startswith(prefix) and (trainable is None or record.trainable is trainable)
        }

    def _call(self, frame: context.Frame, create: bool = False) -> _Call | None:
        call = self._calls.get(frame)
        if call is None and create:
            scope = self._scope_now
            if scope is not None:  # made in another call, or outside any
                scope = VariableScope(frame, scope.name, scope._settings, scope.original_name_scope)
            call = self._calls[frame] = _Call(scope)
        return call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = context.current(f"template {self._name!r}")
        call = self._call(frame, create=True)
        if call.scope is not None:
            with variable_scope(call.scope, reuse=not call.first_call) as scope:
                if call.created:
                    scope.set_custom_getter(
                        _compose_getters(scope.custom_getter, self._checker(frame, call))
                    )
                return self._call_func(frame, call, args, kwargs)
        with variable_scope(
            self._unique_name, default_name=self._name, custom_getter=self._custom_getter
        ) as scope:
            call.scope = scope
            self._last_scope_name = scope.name
            return self._call_func(frame, call, args, kwargs)

    def _call_func(self, frame: context.Frame, call: _Call, args: tuple, kwargs: dict) -> Any:
        if call.created:
            # A later call: everything it obtains must exist already. The
            # getter above refuses new names obtained in the template's scope;
            # this catches those obtained through another scope (a captured
            # one re-entered inside the function), as TF1's check did.
            before = len(frame.records)
            out = self._func(*args, **kwargs)
            if len(frame.records) != before:
                raise self._later_call_error(call, list(frame.records)[before])
            return out
        if call.first_call:
            call.first_call = False
            try:
                out = self._func(*args, **kwargs)
            except BaseException:
                call.first_call = True  # as TF1: the next call is a first call again
                raise
            call.created = True
            return out
        # Called again while its first call runs (the function calls its own
        # template): a reuse, unchecked, as in TF1.
        return self._func(*args, **kwargs)

    def _checker(self, frame: context.Frame, call: _Call) -> Callable:
        """The getter that refuses, on a later call, a name the call has not
        obtained yet: the outermost of the scope's getters, so it sees the
        name that is finally created."""

        def check(getter, name, *args, **kwargs):
            if name not in frame.records:
                raise self._later_call_error(call, name)
            return getter(name, *args, **kwargs)

        return check

    def _later_call_error(self, call: _Call, name: str) -> errors.TemplateVariableError:
        return errors.TemplateVariableError(
            template=self._name, scope=call.scope.name, made_at=self._origin, path=name
        )

    def __repr__(self) -> str:
        return f"<js.Template {self._name!r} of {getattr(self._func, '__name__', self._func)!r}>"


def make_template(
    name_: str,
    func_: Callable,
    create_scope_now_: bool = False,
    unique_name_: str | None = None,
    custom_getter_: Callable | None = None,
    **kwargs: Any,
) -> Template:
    """TF1's ``tf.compat.v1.make_template``: ``func_`` wrapped so that it
    shares its variables between calls.

    In each ``init``/``apply`` call, the template's first call opens the
    scope ``name_``, uniquified in the scope current there as TF1 does
    (``layer``, ``layer_1``, … for ``name_="layer"``, counted with every
    ``default_name``),
    and calls ``func_``, which creates its variables there. Every later call
    in the same ``init``/``apply`` call re-enters that scope with
    ``reuse=True``, wherever it is made, so it shares them; one that would
    obtain a variable the first call did not is a
    :class:`~jaxscope.errors.TemplateVariableError` (a ``ValueError``).
    Each ``init``/``apply`` call starts afresh, as a new TF1 graph did, so a
    template built once at module level works in every call (and gives the
    same names in ``init`` and ``apply``).

    Args:
        name_: the name of the template's scope (uniquified).
        func_: the function to wrap; it creates its variables with
            ``js.get_variable`` (or ``js.nn`` layers, or other templates).
        create_scope_now_: fix the scope when the template is made instead
            of at its first call. Made inside an ``init``/``apply`` call,
            the scope is uniquified and entered there and then, as in TF1,
            with that place's settings (initializer, dtype, custom getter,
            reuse). Made outside any call (there is no graph to number it
            in), its name is ``unique_name_`` or ``name_`` as given, at the
            root. Either way every call, wherever it is made, re-enters that
            scope; the first in each ``init``/``apply`` call creates.
        unique_name_: the scope's name, used as given instead of
            uniquifying ``name_``. A second template with the same name
            creates the same variables: a ``VariableExistsError``, unless it
            is first called where reuse is on (as in TF1).
        custom_getter_: a custom getter for the template's scope, called as
            ``js.variable_scope``'s ``custom_getter`` is.
        **kwargs: keyword arguments bound to ``func_`` on every call.

    Returns:
        A :class:`Template`, called like ``func_``. Its ``variable_scope``,
        ``variable_scope_name`` and ``variables`` (``{name: value}`` of this
        call) describe its scope; ``variable_scope_name`` outside a call is
        the name it had in the latest one.

    >>> def scale(x, scalar_name):
    ...     return x * js.get_variable(scalar_name, [], initializer=js.initializers.ones)
    >>> scale_by_y = js.make_template("scale_by_y", scale, scalar_name="y")
    >>> def model(x1, x2):
    ...     return scale_by_y(x1) + scale_by_y(x2)  # both scaled by the same y
    >>> f = js.transform(model)
    >>> params = f.init(0, 1.0, 2.0)
    >>> js.flatten(params)
    {'scale_by_y/y': Array(1., dtype=float32)}
    >>> float(jax.jit(f.apply)({"scale_by_y": {"y": 3.0}}, 1.0, 2.0))
    9.0
    >>> scale_by_y.variable_scope_name
    'scale_by_y/'
    """
    if kwargs:
        func_ = functools.partial(func_, **kwargs)
    return Template(name_, func_, create_scope_now_, unique_name_, custom_getter_)
