"""The error classes of :mod:`jaxscope.errors`, documented there.

Every class takes keyword arguments that name what went wrong (the
variable's path, the shapes asked for and found, the checkpoint's step, ...),
keeps each as an attribute of the same name, and builds its message, fix
included, from them: ``VariableExistsError(path="enc/w", created_at="m.py:3")``.
Classes that cover many situations (``ArgumentError``, ``InitializerError``,
...) take the situation as a ``problem`` and a ``fix``, with the function, the
argument or the variable's path that the message starts with. Errors pickle
with their arguments, so they cross process boundaries intact.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

MAX_LISTED = 12
"""How many names a message lists before ``... and N more``."""


def describe_cause(error: BaseException | str) -> str:
    """``Type: first line`` of an error from a storage library, for the
    message of the typed error that wraps it; a long line is shortened in
    the middle (such errors put the path first and the reason last)."""
    if isinstance(error, str):
        return error
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 400:
        first = f"{first[:150]} ... {first[-250:]}"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _with_fix(problem: str, fix: str) -> str:
    return _sentence(problem) + (f" Fix: {_sentence(fix)}" if fix else "")


def _capitalized(text: str) -> str:
    """``text`` as a sentence's start; one starting with code (``js.x``) as it is."""
    first = text.split(" ", 1)[0]
    return text if any(c in first for c in "._()'\"") else text[:1].upper() + text[1:]


def _listed(items: Sequence[Any], indent: str = "    ") -> str:
    shown = [f"{indent}{item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append(f"{indent}... and {len(items) - MAX_LISTED} more")
    return "\n".join(shown)


def _shape(shape: Any) -> Any:
    return None if shape is None else tuple(shape)


def _rebuild(cls: type[ScopeError], fields: dict[str, Any]) -> ScopeError:
    return cls(**fields)


class ScopeError(Exception):
    """Base class of every jaxscope error; never raised itself.

    >>> issubclass(js.errors.VariableExistsError, js.errors.ScopeError)
    True
    >>> error = js.errors.VariableExistsError(path="enc/w", created_at="model.py:3")
    >>> error.path, isinstance(error, ValueError)
    ('enc/w', True)
    """

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name in inspect.get_annotations(klass):
                if name.startswith("_"):
                    continue
                if name not in fields:
                    fields.append(name)
                if name in vars(klass):
                    defaults[name] = vars(klass)[name]
        cls._fields, cls._defaults = tuple(fields), defaults
        empty = inspect.Parameter.empty
        cls.__signature__ = inspect.Signature(
            [
                inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(n, empty))
                for n in fields
            ]
        )
        if not cls.__name__.startswith("_"):
            cls.__module__ = "jaxscope.errors"  # where users import them from

    def __init__(self, **fields: Any) -> None:
        unknown = sorted(set(fields) - set(self._fields))
        missing = [n for n in self._fields if n not in fields and n not in self._defaults]
        if unknown or missing:
            raise TypeError(
                f"{type(self).__name__}() takes the keyword arguments {list(self._fields)}; "
                f"unknown: {unknown}, missing: {missing}"
            )
        for name in self._fields:
            setattr(self, name, fields[name] if name in fields else self._defaults[name])
        super().__init__(self._message())

    def _message(self) -> str:
        return ""

    def __reduce__(self) -> Any:
        # An exception held as an argument may not pickle: its description does.
        fields = {
            n: describe_cause(v) if isinstance(v, BaseException) else v
            for n, v in ((n, getattr(self, n)) for n in self._fields)
        }
        extra = {k: v for k, v in vars(self).items() if k not in self._fields}
        return _rebuild, (type(self), fields), extra or None


ScopeError.__module__ = "jaxscope.errors"
ScopeError.__signature__ = inspect.Signature([])


class _Described(ScopeError):
    """An error of many situations: the message is ``<head> <problem>. Fix:
    <fix>.``, where the head is ``function: argument`` or ``Variable path``."""

    problem: str
    fix: str = ""
    function: str = ""
    argument: str = ""
    path: str = ""

    def _head(self) -> str:
        if self.function:
            return f"{self.function}: " + (f"{self.argument} " if self.argument else "")
        if self.argument:
            return f"{self.argument} "
        return f"Variable {self.path} " if self.path else ""

    def _message(self) -> str:
        head = self._head()
        return _with_fix(head + (self.problem if head else _capitalized(self.problem)), self.fix)


# --- Variables -----------------------------------------------------------------------


class VariableExistsError(ScopeError, ValueError):
    """A name is created twice in one call without reuse.

    ``created_at`` is the ``file:line`` of the first creation;
    ``being_created`` says the name was asked for while its own initializer
    ran.

    >>> def model():
    ...     with js.variable_scope("foo"):
    ...         js.get_variable("v", [1])
    ...     with js.variable_scope("foo"):
    ...         js.get_variable("v", [1])  # foo/v exists: reuse was not asked for
    >>> js.transform(model).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.VariableExistsError: Variable foo/v already exists, created at ...
    Fix: set reuse=True or reuse=js.AUTO_REUSE in the variable scope (or call
    scope.reuse_variables()) to share it, or use another name.
    """

    path: str
    created_at: str = ""
    being_created: bool = False

    def _message(self) -> str:
        if self.being_created:
            return _with_fix(
                f"Variable {self.path} is obtained while it is being created: its "
                "initializer calls get_variable for it",
                "have the initializer obtain another name",
            )
        return _with_fix(
            f"Variable {self.path} already exists, created at {self.created_at}",
            "set reuse=True or reuse=js.AUTO_REUSE in the variable scope (or call "
            "scope.reuse_variables()) to share it, or use another name",
        )


class VariableMissingError(ScopeError, ValueError):
    """A reused name does not exist, or ``apply``'s tree lacks it.

    With ``in_apply=True`` the message lists the ``nearest`` names the tree
    holds; other situations pass a ``problem`` and a ``fix``.

    >>> def inference():
    ...     with js.variable_scope("decoder", reuse=True):
    ...         return js.get_variable("w", [2])  # never created
    >>> js.transform(inference).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.VariableMissingError: Variable decoder/w does not exist, or was
    not created by get_variable(): it is asked for with reuse=True before being
    created. Fix: create it first in a scope with reuse=None, or use
    reuse=js.AUTO_REUSE.
    """

    path: str
    in_apply: bool = False
    nearest: Sequence[str] = ()
    problem: str = ""
    fix: str = ""

    def _message(self) -> str:
        if self.problem:
            return _with_fix(f"Variable {self.path} {self.problem}", self.fix)
        if self.in_apply:
            near = ", ".join(self.nearest) or "(the tree is empty)"
            return _with_fix(
                f"Variable {self.path} is not in the tree given to apply. Nearest names "
                f"present: {near}",
                "pass the params that init returned for this model, or check the variable's scope",
            )
        return _with_fix(
            f"Variable {self.path} does not exist, or was not created by get_variable(): "
            "it is asked for with reuse=True before being created",
            "create it first in a scope with reuse=None, or use reuse=js.AUTO_REUSE",
        )


class ShapeMismatchError(ScopeError, ValueError):
    """A variable is asked for with another shape than it has.

    ``requested`` and ``stored`` are the two shapes; inside
    ``js.layer_stack(num_layers)`` the stored shape lacks the layer axis.

    >>> def dense():
    ...     return js.get_variable("dense/kernel", [3, 2])
    >>> js.transform(dense).apply({"dense": {"kernel": jnp.ones((2, 3))}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.ShapeMismatchError: Trying to share variable dense/kernel, but
    specified shape (3, 2) and found shape (2, 3). Fix: ask for shape (2, 3) (or
    omit shape on reuse), or pass params made for this model.
    """

    path: str
    stored: Sequence[int]
    requested: Sequence[int] | None = None
    num_layers: int | None = None

    def _message(self) -> str:
        stored = _shape(self.stored)
        if self.num_layers is not None:
            return _with_fix(
                f"Variable {self.path} is created inside js.layer_stack({self.num_layers}), "
                f"so it must have a leading axis of size {self.num_layers}, but found shape "
                f"{stored}",
                "pass params made for this model (js.stack_layers converts params of the "
                "unrolled model)",
            )
        return _with_fix(
            f"Trying to share variable {self.path}, but specified shape "
            f"{_shape(self.requested)} and found shape {stored}",
            f"ask for shape {stored} (or omit shape on reuse), or pass params made for this model",
        )


class DtypeMismatchError(ScopeError, ValueError):
    """A variable is asked for with another dtype than it has.

    >>> def dense():
    ...     return js.get_variable("dense/kernel", [3, 2])
    >>> js.transform(dense).apply({"dense": {"kernel": jnp.ones((3, 2), jnp.bfloat16)}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.DtypeMismatchError: Trying to share variable dense/kernel, but
    specified dtype float32 and found dtype bfloat16. Fix: ask for dtype bfloat16
    (or omit dtype on reuse), or cast the params tree to the model's dtype.
    """

    path: str
    requested: Any
    stored: Any

    def _message(self) -> str:
        return _with_fix(
            f"Trying to share variable {self.path}, but specified dtype {self.requested} "
            f"and found dtype {self.stored}",
            f"ask for dtype {self.stored} (or omit dtype on reuse), or cast the params "
            "tree to the model's dtype",
        )


class InvalidNameError(ScopeError, ValueError):
    """A variable or scope name is empty, has ``:``, ``//``, or a leading or trailing ``/`` (also
    one a custom getter passes on).

    ``kind`` says what is named (``variable``, ``scope``, ...); ``scope`` is
    the scope the name is relative to. A name that is not a ``str`` at all is
    an :class:`ArgumentTypeError`, as in TF1.

    >>> js.transform(lambda: js.get_variable("w:0", [1])).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.InvalidNameError: Invalid variable name 'w:0': it contains ':'
    (TF1's ':0' output suffix is not part of a name). Fix: use non-empty components
    joined by '/', such as 'encoder/lstm/kernel'.
    """

    name: str
    problem: str
    kind: str = "variable"
    scope: str = ""

    def _message(self) -> str:
        where = f" (full name {self.scope}/{self.name})" if self.scope else ""
        return _with_fix(
            f"Invalid {self.kind} name {self.name!r}{where}: it {self.problem}",
            "use non-empty components joined by '/', such as 'encoder/lstm/kernel'",
        )


class NameConflictError(ScopeError, ValueError):
    """A name would be both a variable and a scope holding variables.

    TF1 allowed ``a/x`` beside ``a/x/y``; a nested dict cannot hold both, so
    the ``get_variable`` call that makes the conflict raises. ``variable`` is
    the name above ``path`` that is a variable (created at ``created_at``),
    or ``below`` lists the variables below ``path``. Trees that cannot be
    flattened or unflattened, and bridged modules whose names clash, pass a
    ``problem`` and a ``fix``.

    >>> def conflict():
    ...     js.get_variable("enc/x", [1])
    ...     js.get_variable("enc/x/y", [1])
    >>> js.transform(conflict).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.NameConflictError: Variable enc/x/y cannot be created: enc/x is
    already a variable, created at ..., and a nested params tree cannot hold a
    variable and a sub-tree at one path. Fix: rename one of them.
    """

    path: str = ""
    variable: str = ""
    created_at: str = ""
    below: Sequence[str] = ()
    problem: str = ""
    fix: str = "rename one of them"
    function: str = ""

    def _message(self) -> str:
        if self.problem:
            if self.function:
                return _with_fix(f"{self.function}: {self.problem}", self.fix)
            return _with_fix(_capitalized(self.problem), self.fix)
        if self.below:
            other = f"{self.path} is already a scope holding variables ({', '.join(self.below)})"
        else:
            where = f"created at {self.created_at}" if self.created_at else "being created"
            other = f"{self.variable} is already a variable, {where}"
        return _with_fix(
            f"Variable {self.path} cannot be created: {other}, and a nested params tree "
            "cannot hold a variable and a sub-tree at one path",
            self.fix,
        )


class InitializerError(_Described, ValueError):
    """No shape, a negative dim, a concrete initializer of another shape (or a ragged one), an
    initializer refusing the shape or dtype (``orthogonal`` on a vector, a normal
    distribution of ints), or an initializer output of the wrong shape or dtype.

    The message names the variable's ``path`` (or the initializer's
    ``function``), the ``problem`` and the ``fix``.

    >>> js.transform(lambda: js.get_variable("enc/w")).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.InitializerError: Variable enc/w has no shape. Fix: give shape=... or
    a concrete initializer value (an array, scalar or nested list).
    """


class InvalidParamsError(_Described, VariableMissingError):
    """``apply``'s tree is not a dict, has a sub-tree where a variable belongs (or the reverse), or
    a leaf that is not an array.

    The variable is missing from the tree, so this is a
    :class:`VariableMissingError` too.

    >>> def dense():
    ...     return js.get_variable("dense/kernel", [3, 2])
    >>> js.transform(dense).apply({"dense": {"kernel": 1.0}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.InvalidParamsError: Variable dense/kernel in the tree given to
    apply is a float, not an array. Fix: pass the params tree that init returned
    (arrays at every leaf).
    """

    path: str = ""


class ArgumentError(_Described, ValueError):
    """An argument value a jaxscope function cannot use (``layer_stack(0)``, ``js.scan`` without
    ``xs`` or ``length``, trees ``stack_layers`` cannot stack, a dropout rate outside ``[0,
    1)``).

    The message names the ``function``, the ``argument``, the ``problem`` and
    the ``fix``.

    >>> js.nn.dropout(jnp.ones(3), rate=1.5, is_training=True)
    Traceback (most recent call last):
    ...
    jaxscope.errors.ArgumentError: js.nn.dropout: rate must be in [0, 1), got 1.5.
    Fix: pass a rate of at least 0 and below 1 (the fraction of values dropped).
    """


class ScopeArgumentError(ArgumentError):
    """``variable_scope`` values TF1 refuses with ``ValueError``: ``default_name`` with
    ``reuse=True`` or ``AUTO_REUSE``, a bad ``reuse`` flag, a ``custom_getter`` that is not
    callable.

    >>> def model():
    ...     with js.variable_scope(None, default_name="layer", reuse=True):
    ...         pass
    >>> js.transform(model).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.ScopeArgumentError: js.variable_scope(default_name='layer'): reuse
    cannot be True: a uniquified name is always new. Fix: ...
    """


class ArgumentTypeError(_Described, TypeError):
    """An argument of the wrong type, where TF1 raised ``TypeError``: ``variable_scope(None)``
    without ``default_name``, a non-bool ``auxiliary_name_scope``, a name that is not a
    ``str``, a shape of non-ints (a ``jit``-traced int among them), a ``dtype`` that is not
    one, an ``rng`` that is not a key, a generator as model function.

    >>> js.transform(lambda: js.get_variable("w", [2])).init("seed")
    Traceback (most recent call last):
    ...
    jaxscope.errors.ArgumentTypeError: rng must be a JAX PRNG key
    (jax.random.key(0)), a raw uint32 key (jax.random.PRNGKey(0)) or an int seed;
    got str. Fix: ...
    """


# --- Misuse of the machinery ---------------------------------------------------------


class ScopeNestingError(ScopeError, RuntimeError):
    """Scopes exited out of order, or left open when the model returns.

    ``scope`` is the scope exited; ``still_open`` the scopes entered inside
    it (or, with ``function``, those the model function left open).

    >>> def model():
    ...     outer, inner = js.variable_scope("outer"), js.variable_scope("inner")
    ...     outer.__enter__()
    ...     inner.__enter__()
    ...     outer.__exit__(None, None, None)  # inner is still open
    >>> js.transform(model).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.ScopeNestingError: ... was exited out of order: ... is still open.
    Fix: use `with` blocks, or exit scopes in the reverse order of entering them.
    """

    scope: str = ""
    still_open: Sequence[str] = ()
    function: str = ""

    def _message(self) -> str:
        if self.function:
            return _with_fix(
                f"{self.function} entered scopes that it never exited: "
                f"{', '.join(self.still_open)}",
                "open scopes with `with` blocks",
            )
        if self.still_open:
            return _with_fix(
                f"{self.scope} was exited out of order: {self.still_open[-1]}, entered "
                "inside it, is still open",
                "use `with` blocks, or exit scopes in the reverse order of entering them",
            )
        return _with_fix(
            f"{self.scope} was exited but is not open (exited twice, never entered, or "
            "entered in another transform call)",
            "use `with` blocks",
        )


class NoTransformError(ScopeError, RuntimeError):
    """A jaxscope function is called outside ``init``/``apply``.

    >>> js.get_variable("w", [2])
    Traceback (most recent call last):
    ...
    jaxscope.errors.NoTransformError: js.get_variable('w') can only be called inside a
    function transformed by js.transform or js.transform_with_state, while its init
    or apply runs. Fix: f = js.transform(model); params = f.init(rng, ...).
    """

    function: str

    def _message(self) -> str:
        return _with_fix(
            f"{self.function} can only be called inside a function transformed by "
            "js.transform or js.transform_with_state, while its init or apply runs",
            "f = js.transform(model); params = f.init(rng, ...)",
        )


class StaleScopeError(ScopeError, RuntimeError):
    """A ``VariableScope`` is used after (or outside) the call that made it.

    >>> captured = []
    >>> def model():
    ...     with js.variable_scope("enc") as scope:
    ...         captured.append(scope)
    >>> js.transform(model).init(0)
    {}
    >>> def later():
    ...     with js.variable_scope(captured[0]):  # from a call that has ended
    ...         pass
    >>> js.transform(later).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.StaleScopeError: VariableScope 'enc' belongs to a transform call
    that has ended (or to another call). Scopes live for one init or apply call.
    Fix: capture the scope inside the model function and use it there.
    """

    scope: str

    def _message(self) -> str:
        return _with_fix(
            f"VariableScope '{self.scope}' belongs to a transform call that has ended (or "
            "to another call). Scopes live for one init or apply call",
            "capture the scope inside the model function and use it there",
        )


class StateInStatelessTransformError(ScopeError, RuntimeError):
    """``trainable=False`` under ``js.transform``.

    >>> js.transform(lambda: js.get_variable("bn/count", [], trainable=False)).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.StateInStatelessTransformError: Variable bn/count has
    trainable=False, so it lives in `state`, which js.transform does not return.
    Fix: use js.transform_with_state, whose init returns (params, state) and apply
    returns (out, new_state).
    """

    path: str

    def _message(self) -> str:
        return _with_fix(
            f"Variable {self.path} has trainable=False, so it lives in `state`, which "
            "js.transform does not return",
            "use js.transform_with_state, whose init returns (params, state) and apply "
            "returns (out, new_state)",
        )


class AssignError(_Described, ValueError):
    """``js.assign`` to a trainable or missing variable, or a value of the wrong shape or dtype.

    >>> def model():
    ...     js.get_variable("w", [2])
    ...     js.assign("w", jnp.zeros(2))
    >>> js.transform(model).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.AssignError: Cannot assign to variable w: it is trainable (a
    param). Only trainable=False variables (state) can be assigned. Fix: create it
    with trainable=False and use js.transform_with_state.
    """

    def _head(self) -> str:
        return f"Cannot assign to variable {self.path}: "


class MissingRNGError(ScopeError, ValueError):
    """A random key is needed and the call has no ``rng``.

    ``needed_by`` says what needs the key (or ``path`` names the variable
    to initialize); ``cause`` is what a bridged module's library said.

    >>> def dropout(x):
    ...     with js.variable_scope("dropout"):
    ...         return jax.random.bernoulli(js.next_rng_key(), 0.9, x.shape)
    >>> js.transform(dropout).apply({}, jnp.ones(2))
    Traceback (most recent call last):
    ...
    jaxscope.errors.MissingRNGError: js.next_rng_key() in scope 'dropout' needs a
    random key, but no rng was given. Fix: pass rng=jax.random.key(...) to apply (or
    a key to init).
    """

    needed_by: str = ""
    path: str = ""
    fix: str = "pass rng=jax.random.key(...) to apply (or a key to init)"
    cause: str = ""

    def _message(self) -> str:
        who = f"Variable {self.path}" if self.path else self.needed_by
        purpose = " to be initialized" if self.path else ""
        cause = f" ({self.cause})" if self.cause else ""
        return _with_fix(
            f"{who} needs a random key{purpose}, but no rng was given{cause}", self.fix
        )


class RawTransformError(ScopeError, RuntimeError):
    """A variable is created inside a raw ``jax.lax.scan``, ``jax.vmap``, ``jax.jit``, …

    Its value would be a tracer of the inner transform and leak out of it;
    with ``assigned=True``, ``js.assign`` was called there.

    >>> def raw_rnn(xs):
    ...     def step(h, x):
    ...         return h * js.get_variable("w", []), None
    ...     with js.variable_scope("rnn"):
    ...         return jax.lax.scan(step, 1.0, xs)[0]
    >>> js.transform(raw_rnn).init(0, jnp.ones(3))
    Traceback (most recent call last):
    ...
    jaxscope.errors.RawTransformError: Variable rnn/w is created inside a raw JAX
    transform (jax.jit, jax.vmap, jax.lax.scan, jax.checkpoint, jax.lax.while_loop,
    ...) opened inside the model function; its value would leak as a tracer. Fix:
    use the lifted version (js.scan, js.vmap, js.remat, js.while_loop, js.cond,
    js.layer_stack), or create the variable before entering the transform.
    ...
    """

    path: str
    assigned: bool = False

    def _message(self) -> str:
        if self.assigned:
            return _with_fix(
                f"js.assign({self.path!r}) is called inside a raw JAX transform "
                "(jax.lax.scan, jax.vmap, jax.jit, ...); the new state would be a tracer "
                "of that transform",
                "return the value from the transform and assign it after it",
            )
        return _with_fix(
            f"Variable {self.path} is created inside a raw JAX transform (jax.jit, "
            "jax.vmap, jax.lax.scan, jax.checkpoint, jax.lax.while_loop, ...) opened "
            "inside the model function; its value would leak as a tracer",
            "use the lifted version (js.scan, js.vmap, js.remat, js.while_loop, js.cond, "
            "js.layer_stack), or create the variable before entering the transform",
        )


class LiftError(_Described, RuntimeError):
    """``js.layer_stack`` nested in another layer stack's layers, a layer creating variables
    outside its stack's scope, a body obtaining other variables when traced again,
    ``js.assign`` in ``js.while_loop``'s condition, or inside ``js.vmap`` of a value that
    differs between examples.

    >>> def stack_in_stack(x):
    ...     inner = js.layer_stack(2)(lambda h: h * js.get_variable("w", []))
    ...     return js.layer_stack(3)(inner)(x)
    >>> js.transform(stack_in_stack).init(0, jnp.ones(3))
    Traceback (most recent call last):
    ...
    jaxscope.errors.LiftError: js.layer_stack cannot be nested inside another
    js.layer_stack's layers. Fix: ...
    """


class LayerBodyError(ScopeError, TypeError):
    """A ``js.layer_stack`` layer body that returns other than its input's structure, shapes and
    dtypes (or, with per-layer inputs, not ``(x, out_i)``), or per-layer inputs without the
    layer axis.

    Layer ``i + 1`` takes what layer ``i`` returns; with
    ``with_per_layer_inputs=True`` the body returns ``(x, out_i)`` and takes
    its per-layer inputs stacked by layer.

    >>> @js.layer_stack(2)
    ... def layer(x):
    ...     return jnp.concatenate([x, x])  # grows: layer 2 could not take it
    >>> js.transform(layer).init(0, jnp.ones(3))
    Traceback (most recent call last):
    ...
    jaxscope.errors.LayerBodyError: js.layer_stack(2): the layer body must return x ...
    """

    num_layers: int
    problem: str
    fix: str
    per_layer_inputs: bool = False

    def _message(self) -> str:
        flag = ", with_per_layer_inputs=True" if self.per_layer_inputs else ""
        return _with_fix(f"js.layer_stack({self.num_layers}{flag}): {self.problem}", self.fix)


class ShardingError(_Described, ValueError):
    """A variable's sharding does not fit its shape or the mesh.

    >>> def sharded():
    ...     return js.get_variable("enc/w", [4], sharding=("data", "model"))
    >>> js.transform(sharded).init(0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.ShardingError: Variable enc/w has shape (4,) (1 dims) but its
    sharding P('data', 'model') has 2 entries. Fix: give at most one entry per dim.
    """


class UnusedVariableError(ScopeError, ValueError):
    """``apply`` of a ``check_unused=True`` transform is given variables the model never obtained.

    >>> def dense():
    ...     return js.get_variable("dense/kernel", [3, 2])
    >>> old = {"dense": {"kernel": jnp.ones((3, 2))}, "dense_old": {"kernel": jnp.ones((3, 2))}}
    >>> js.transform(dense, check_unused=True).apply(old)
    Traceback (most recent call last):
    ...
    jaxscope.errors.UnusedVariableError: apply was given 1 variable(s) that the model
    never obtained: dense_old/kernel. Fix: check their scope names, or drop them from
    the tree (check_unused=True asked for this check).
    """

    paths: Sequence[str]

    def _message(self) -> str:
        shown = ", ".join(self.paths[:8]) + (" ..." if len(self.paths) > 8 else "")
        return _with_fix(
            f"apply was given {len(self.paths)} variable(s) that the model never obtained: {shown}",
            "check their scope names, or drop them from the tree (check_unused=True asked "
            "for this check)",
        )


class FlaxModuleTypeError(_Described, TypeError):
    """``js.flax_module`` is given an NNX module or ``js.nnx_module`` a Linen one (or either
    something that is no module).

    >>> js.flax_module(3)
    Traceback (most recent call last):
    ...
    jaxscope.errors.FlaxModuleTypeError: js.flax_module: module must be a
    flax.linen.Module, got int. Fix: pass a module instance, e.g. nn.Dense(4).
    """


# --- Selecting variables and templates ------------------------------------------------


class SelectionError(ScopeError, ValueError):
    """``js.select``, ``js.partition`` or ``js.labels`` is given a scope that holds no variable of
    the tree, or ``js.labels`` leaves a variable without a label.

    A scope that holds nothing would give an optimizer nothing to train (or
    to freeze), silently. ``scope`` is the scope asked for and ``nearest`` the
    names the tree holds that are closest to it; ``unlabelled`` lists the
    variables that ``js.labels`` left without a label, under none of
    ``scopes``.

    >>> js.select({"generator": {"w": jnp.ones(2)}}, "genrator")
    Traceback (most recent call last):
    ...
    jaxscope.errors.SelectionError: js.select: scope 'genrator' holds no variable of
    the tree (nearest names: generator, generator/w). ...
    """

    function: str
    scope: str = ""
    nearest: Sequence[str] = ()
    unlabelled: Sequence[str] = ()
    scopes: Sequence[str] = ()

    def _message(self) -> str:
        if self.unlabelled:
            shown = ", ".join(self.unlabelled[:8]) + (" ..." if len(self.unlabelled) > 8 else "")
            return _with_fix(
                f"{self.function}: {len(self.unlabelled)} variable(s) under none of the "
                f"scopes {sorted(self.scopes)}: {shown}",
                "add their scopes to the mapping, or pass default=<label> for the "
                "variables left over",
            )
        near = ", ".join(self.nearest) or "none, the tree is empty"
        return _with_fix(
            f"{self.function}: scope {self.scope!r} holds no variable of the tree (nearest "
            f"names: {near}). Scopes match whole name components ('enc' does not match "
            "'encoder/...')",
            "use a scope name the tree holds (js.flatten(tree) lists them)",
        )


class MergeConflictError(SelectionError):
    """``js.merge`` is given trees that hold the same variable (or a variable where another holds a
    scope).

    ``path`` is held as a variable by tree ``tree`` and, by tree ``other``,
    as a variable too, or as a scope holding ``inside`` (or ``path`` is inside
    a variable ``above`` of tree ``other``).

    >>> js.merge({"gen": {"w": jnp.ones(2)}}, {"gen": {"w": jnp.zeros(2)}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.MergeConflictError: js.merge: trees 0 and 1 both hold variable
    gen/w. Fix: merge trees that hold different variables (such as the two results of
    js.partition), or drop the duplicate from one of them.
    """

    function: str = "js.merge"
    path: str = ""
    tree: int = 0
    other: int = 0
    inside: str = ""
    above: str = ""

    def _message(self) -> str:
        if self.inside:
            problem = f"tree {self.tree} holds variable {self.path} and tree {self.other} holds {self.inside} inside it"
        elif self.above:
            problem = f"tree {self.other} holds variable {self.above} and tree {self.tree} holds {self.path} inside it"
        else:
            problem = f"trees {self.other} and {self.tree} both hold variable {self.path}"
        return _with_fix(
            f"{self.function}: {problem}",
            "merge trees that hold different variables (such as the two results of "
            "js.partition), or drop the duplicate from one of them",
        )


class TemplateVariableError(ScopeError, ValueError):
    """A call of a ``js.make_template`` template after its first one (in an ``init``/``apply``
    call) obtains a variable its first call did not create.

    A template creates all its variables on its first call and reuses them
    on every later one (TF1 raised ``ValueError`` here too).

    >>> def scale(x, name):
    ...     return x * js.get_variable(name, [], initializer=js.initializers.ones)
    >>> scale = js.make_template("scale", scale)
    >>> def model(x):
    ...     return scale(x, name="a") + scale(x, name="b")  # b is new on the 2nd call
    >>> js.transform(model).init(0, 1.0)
    Traceback (most recent call last):
    ...
    jaxscope.errors.TemplateVariableError: Template 'scale' (scope scale, made at ...)
    asks for variable scale/b on a later call, ...
    """

    template: str
    scope: str
    made_at: str
    path: str

    def _message(self) -> str:
        return _with_fix(
            f"Template {self.template!r} (scope {self.scope}, made at {self.made_at}) asks "
            f"for variable {self.path} on a later call, but its first call in this "
            "init/apply call did not create it: a template creates all its variables on "
            "its first call and reuses them afterwards",
            "make the names the function asks for the same on every call (not depending "
            "on its arguments; pass such arguments to js.make_template as keywords), or "
            "use a separate template",
        )


# --- Checkpoints (js.checkpoint) ------------------------------------------------------
#
# Every class below is a ValueError (TF1's Saver raises ValueError for a path
# that holds no checkpoint and for a checkpoint that does not fit), except
# TF1DependencyError, an ImportError. The family bases CheckpointError and
# TF1CheckpointError catch everything their loader raises.


def _step_path(directory: Any, step: Any) -> str:
    return os.path.join(os.fspath(directory), str(step))


class CheckpointError(ScopeError, ValueError):
    """Base class of every ``js.checkpoint`` error.

    Every message names the checkpoint directory (and the step, and the
    variable's path where one is involved) and the fix. A failed ``save`` or
    ``restore`` leaves every earlier checkpoint and the caller's trees as
    they were.

    >>> try:
    ...     js.checkpoint.restore("/no/such/directory", like={})
    ... except js.errors.CheckpointError as error:
    ...     print(type(error).__name__)
    CheckpointNotFoundError
    """


class CheckpointArgumentError(CheckpointError):
    """``save``/``restore`` get an invalid ``step``, ``keep``, flag or directory.

    >>> js.checkpoint.save("/tmp/ckpt", -1, {})
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointArgumentError: step must be a non-negative int, got -1.
    Fix: pass the step as an int, e.g. the training step.
    """

    argument: str
    value: Any
    expected: str
    fix: str = ""

    def _message(self) -> str:
        return _with_fix(f"{self.argument} must be {self.expected}, got {self.value!r}", self.fix)


class CheckpointTreeError(CheckpointError):
    """A saved tree (or a template) holds a leaf no checkpoint can hold, or two leaves with one
    path.

    Checked before anything is written: a leaf that is not an array or
    scalar, a dtype orbax cannot write (strings, objects), a Python int
    beyond int64, an array deleted by donation. ``operation`` is ``save`` or
    ``restore``; ``path`` the leaf's path in ``tree`` (the tree or `like`).

    >>> js.checkpoint.save("/tmp/ckpt", 2, {"vocab": np.array(["a", "b"])})
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointTreeError: Cannot save step 2 to /tmp/ckpt: vocab in the
    tree has dtype <U1, which orbax cannot store. Fix: ...
    """

    operation: str
    step: int
    directory: Any
    problem: str
    fix: str
    path: str = ""
    tree: str = "the tree"

    def _message(self) -> str:
        where = "to" if self.operation == "save" else "from"
        subject = f"{self.path} in {self.tree} " if self.path else ""
        return _with_fix(
            f"Cannot {self.operation} step {self.step} {where} {os.fspath(self.directory)}: "
            f"{subject}{self.problem}",
            self.fix,
        )


class CheckpointExistsError(CheckpointError):
    """``save`` of a step that exists (or that a concurrent save wrote first) without
    ``overwrite=True``.

    >>> CheckpointExistsError = js.errors.CheckpointExistsError
    >>> raise CheckpointExistsError(directory="/ckpt", step=3)
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointExistsError: Checkpoint /ckpt/3 already exists. Fix: pass
    overwrite=True, or save under another step.
    """

    directory: Any
    step: int

    def _message(self) -> str:
        return _with_fix(
            f"Checkpoint {_step_path(self.directory, self.step)} already exists",
            "pass overwrite=True, or save under another step",
        )


class CheckpointWriteError(CheckpointError):
    """Writing failed (full disk, permissions, an overwrite that fails its read-back); earlier
    steps are kept.

    ``cause`` is what the storage layer said (also chained as
    ``error.__cause__``); ``kept`` says what is left: ``earlier`` steps (the
    default), or, for an overwrite, the ``previous`` version of the step too.
    ``creating_directory`` says the directory itself could not be made.

    >>> CheckpointWriteError = js.errors.CheckpointWriteError
    >>> raise CheckpointWriteError(directory="/ckpt", step=2, cause=OSError(28, "No space left"))
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointWriteError: Cannot save step 2 to /ckpt: OSError: [Errno
    28] No space left. Nothing of this save is kept, and every earlier step is intact.
    Fix: free disk space, or check that the directory is writable, and save again.
    """

    directory: Any
    step: int
    cause: Any
    kept: str = "new"
    creating_directory: bool = False

    def _message(self) -> str:
        head = f"Cannot save step {self.step} to {os.fspath(self.directory)}: "
        if self.creating_directory:
            return _with_fix(
                f"{head}the directory cannot be created ({describe_cause(self.cause)})",
                "give a writable directory path",
            )
        kept = {
            "new": "Nothing of this save is kept, and every earlier step is intact.",
            "previous": f"The previous version of step {self.step} is kept, and every "
            "other step is intact.",
        }.get(self.kept, "Every earlier step is intact.")
        return _with_fix(
            f"{head}{describe_cause(self.cause)}. {kept}",
            "free disk space, or check that the directory is writable, and save again",
        )


class CheckpointNotFoundError(CheckpointError):
    """The directory holds no finished checkpoint, or not the step asked for.

    ``steps`` lists the steps present; ``cause`` says why the directory
    could not be listed.

    >>> js.checkpoint.restore("/no/such/directory", like={})
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointNotFoundError: No finished checkpoint in
    /no/such/directory. Fix: check the directory, or save one first.
    """

    directory: Any
    step: int | None = None
    steps: Sequence[int] = ()
    cause: Any = None

    def _message(self) -> str:
        directory = os.fspath(self.directory)
        if self.cause is not None:
            return _with_fix(
                f"Cannot list the checkpoint directory {directory} ({describe_cause(self.cause)})",
                "check that it exists and is readable",
            )
        if self.step is None:
            return _with_fix(
                f"No finished checkpoint in {directory}", "check the directory, or save one first"
            )
        return _with_fix(
            f"No checkpoint for step {self.step} in {directory}; steps present: "
            f"{sorted(self.steps)}",
            "restore one of those steps (or step=None for the latest)",
        )


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's files are truncated, garbled or missing, or an array fails its checksum.

    ``path`` is the step's directory, ``steps`` the steps present (``None``
    when the directory cannot be listed). The damage is in ``file`` (the
    manifest), in ``variable`` (its checksum), or ``cause`` says what the
    storage layer could not read.

    >>> CheckpointCorruptError = js.errors.CheckpointCorruptError
    >>> raise CheckpointCorruptError(
    ...     path="/ckpt/3", steps=[1, 3], variable="dense/kernel",
    ...     problem="fails its checksum (crc32 0x00000001, recorded 0x00000002)")
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointCorruptError: Checkpoint /ckpt/3: dense/kernel fails its
    checksum (crc32 0x00000001, recorded 0x00000002); the file is damaged. Fix:
    restore an earlier step (steps present: [1, 3]).
    """

    path: Any
    steps: Sequence[int] | None = ()
    problem: str = ""
    file: Any = None
    variable: str = ""
    cause: Any = None

    def _message(self) -> str:
        path = os.fspath(self.path)
        if self.file is not None:
            what = self.problem or f"could not be read ({describe_cause(self.cause)})"
            problem = f"Checkpoint {path} is unreadable: its manifest {os.fspath(self.file)} {what}"
        elif self.variable:
            problem = f"Checkpoint {path}: {self.variable} {self.problem}; the file is damaged"
        elif self.cause is not None:
            problem = f"Checkpoint {path} could not be read ({describe_cause(self.cause)})"
        else:
            problem = f"Checkpoint {path}: {self.problem}"
        present = (
            "the directory cannot be listed"
            if self.steps is None
            else f"steps present: {list(self.steps)}"
        )
        return _with_fix(problem, f"restore an earlier step ({present})")


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's paths, shapes or dtypes differ from ``restore``'s template.

    Raised before any array is read; ``differences`` has one line per path
    missing from the checkpoint, missing from the template, or stored with
    another shape or dtype.

    >>> CheckpointMismatchError = js.errors.CheckpointMismatchError
    >>> raise CheckpointMismatchError(
    ...     path="/ckpt/1", differences=["w: shape (2,) in the checkpoint, shape (4,) in `like`"])
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointMismatchError: Checkpoint /ckpt/1 does not match the
    template `like` (1 difference(s)):
      w: shape (2,) in the checkpoint, shape (4,) in `like`
    Fix: build `like` the way the saved tree was built (same model config and
    optimizer), or pass partial=True to ignore saved entries that `like` lacks.
    """

    path: Any
    differences: Sequence[str]

    def _message(self) -> str:
        return (
            f"Checkpoint {os.fspath(self.path)} does not match the template `like` "
            f"({len(self.differences)} difference(s)):\n{_listed(self.differences, '  ')}\n"
            "Fix: build `like` the way the saved tree was built (same model config and "
            "optimizer), or pass partial=True to ignore saved entries that `like` lacks."
        )


class CheckpointVersionError(CheckpointError):
    """The checkpoint was written by a newer jaxscope.

    ``version`` is its format version, ``newest`` the newest this jaxscope
    reads.

    >>> CheckpointVersionError = js.errors.CheckpointVersionError
    >>> raise CheckpointVersionError(path="/ckpt/5", version=3, newest=2)
    Traceback (most recent call last):
    ...
    jaxscope.errors.CheckpointVersionError: Checkpoint /ckpt/5 was written by a newer
    jaxscope (format version 3; this one reads versions 1 to 2). Fix: upgrade jaxscope.
    """

    path: Any
    version: int
    newest: int

    def _message(self) -> str:
        return _with_fix(
            f"Checkpoint {os.fspath(self.path)} was written by a newer jaxscope (format "
            f"version {self.version}; this one reads versions 1 to {self.newest})",
            "upgrade jaxscope",
        )


# --- TF1 checkpoints (js.load_tf1_checkpoint) and Haiku params (js.from_haiku) ----------


class _LoadMismatch(ScopeError):
    """The loaders' mismatch: ``report`` is the loader's
    :class:`~jaxscope.tf1.TF1LoadReport`, for a program to act on; ``nearest``
    maps each missing model path to the nearest unused source names;
    ``suggestion`` is a ``name_map`` rule that would fix the first of them."""

    report: Any
    nearest: Mapping[str, Sequence[str]] = {}
    suggestion: tuple[str, str] | None = None

    _head: ClassVar[str]
    _entry: ClassVar[str]
    _entries: ClassVar[str]
    _side: ClassVar[str]

    def _hint(self) -> str:
        return ""

    def _message(self) -> str:
        report = self.report
        lines = [f"{self._head} ({str(report).splitlines()[0]})."]
        if report.missing:
            lines.append(
                f"Model paths with no {self._entry} (model path <- nearest unused entries):"
            )
            lines.append(
                _listed(
                    [
                        f"{p} <- {', '.join(self.nearest.get(p, ())) or '(none)'}"
                        for p in report.missing
                    ]
                )
            )
        if report.unused:
            lines.append(
                f"{self._entries} the model does not use ({self._side} name [-> renamed]):"
            )
            renamed = report.renamed
            lines.append(
                _listed([n if renamed[n] == n else f"{n} -> {renamed[n]}" for n in report.unused])
            )
        if report.mismatched:
            lines.append(f"Entries that do not fit (model path <- {self._side} name: why):")
            lines.append(_listed([f"{p} <- {n}: {why}" for p, n, why in report.mismatched]))
        if report.missing or report.unused:
            fix = "Fix: add name_map rules (ordered (pattern, replacement) regexes)"
            if self.suggestion is not None:
                fix += f", e.g. append the rule {tuple(self.suggestion)!r}"
            fix += (
                "; drop entries with (pattern, None); or pass strict=False to load the "
                "names that match (mismatched shapes or dtypes always raise)."
            )
            fix += f"\n{self._hint()}" if self._hint() else ""
        else:
            fix = (
                "Fix: build the model with the shapes (and dtype kinds) of these entries, "
                "or map them to other model paths with name_map."
            )
        lines.append(fix)
        return "\n".join(lines)


class TF1CheckpointError(ScopeError, ValueError):
    """Base class of every ``js.load_tf1_checkpoint`` error but ``TF1DependencyError``.

    Every message names the checkpoint path (and the checkpoint entry or
    model path where one is involved) and the fix.

    >>> try:
    ...     js.load_tf1_checkpoint("ckpt/model.ckpt-1000", name_map="^model/")
    ... except js.errors.TF1CheckpointError as error:
    ...     print(type(error).__name__)
    TF1NameMapError
    """


class TF1ArgumentError(_Described, TF1CheckpointError):
    """``path``, ``like`` or ``dtype`` is malformed.

    >>> js.load_tf1_checkpoint("ckpt/model.ckpt-1000", like=3)
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1ArgumentError: like must be a params tree (a nested dict of
    arrays or jax.ShapeDtypeStruct, e.g. jax.eval_shape(f.init, rng, x)) or a tuple of
    trees such as (params, state); got int. Fix: ...
    """


class TF1NameMapError(_Described, TF1CheckpointError):
    """``name_map`` or ``skip`` is malformed, or the names it makes do not form a params tree.

    Malformed: not a list of ``(pattern, replacement)`` pairs or a dict; a
    pattern that is not a valid regex; a replacement that is not a string or
    ``None``, or refers to a group the pattern lacks; ``skip`` given as one
    string. The names it makes: an invalid name, two entries renamed to one
    name, a variable with names below it.

    >>> js.load_tf1_checkpoint("ckpt/model.ckpt-1000", skip="global_step")
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1NameMapError: skip must be a sequence of regex patterns, got
    'global_step'. Fix: wrap a single pattern in a tuple, skip=('global_step',);
    skip=() keeps every entry.
    """


class TF1CheckpointNotFoundError(TF1CheckpointError):
    """No TF1 checkpoint at the path.

    Neither ``<path>.index`` nor a directory exists (``found`` lists the
    checkpoints beside it), or the directory has no ``checkpoint`` file
    (``directory=True``).

    >>> js.load_tf1_checkpoint("/no/such/model.ckpt-1000")
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1CheckpointNotFoundError: No TF1 checkpoint at
    /no/such/model.ckpt-1000: neither /no/such/model.ckpt-1000.index nor a directory
    exists. Fix: give the checkpoint prefix (e.g. model.ckpt-1000, without .index or
    .data-*) or the directory holding the 'checkpoint' file.
    """

    path: str
    directory: bool = False
    found: Sequence[str] = ()

    def _message(self) -> str:
        if self.directory:
            return _with_fix(
                f"No TF1 checkpoint in the directory {self.path}: it has no valid "
                "'checkpoint' file naming one",
                f"give the checkpoint prefix (e.g. {os.path.join(self.path, 'model.ckpt-1000')})",
            )
        folder = os.path.dirname(self.path) or "."
        near = (
            f" Checkpoints in {folder}: {', '.join(self.found[:MAX_LISTED])}." if self.found else ""
        )
        return _with_fix(
            f"No TF1 checkpoint at {self.path}: neither {self.path}.index nor a directory "
            f"exists.{near}",
            "give the checkpoint prefix (e.g. model.ckpt-1000, without .index or .data-*) "
            "or the directory holding the 'checkpoint' file",
        )


class TF1CheckpointCorruptError(TF1CheckpointError):
    """The checkpoint's index or data file is truncated, garbled or missing.

    TensorFlow checks each entry's CRC32C checksum as it reads it.
    ``entry`` is the entry that could not be read (empty: the checkpoint
    itself), ``cause`` what TensorFlow said; ``data_file`` is a data file
    found without its index.

    >>> TF1CheckpointCorruptError = js.errors.TF1CheckpointCorruptError
    >>> raise TF1CheckpointCorruptError(
    ...     path="ckpt/model.ckpt-1000", entry="seq2seq/embedding", cause="DataLossError: Checksum does not match")
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1CheckpointCorruptError: TF1 checkpoint ckpt/model.ckpt-1000:
    entry seq2seq/embedding cannot be read (DataLossError: Checksum does not match);
    the data file is damaged or missing. Fix: use an intact copy of the checkpoint, or
    an earlier one.
    """

    path: str
    entry: str = ""
    cause: Any = None
    data_file: str = ""

    def _message(self) -> str:
        fix = "use an intact copy of the checkpoint, or an earlier one"
        if self.data_file:
            return _with_fix(
                f"TF1 checkpoint {self.path} has data ({self.data_file}) but no index file "
                f"({os.path.basename(self.path)}.index), so its entries cannot be found",
                "use an intact copy of the checkpoint (the .index file comes with it), or an "
                "earlier one",
            )
        if self.entry:
            return _with_fix(
                f"TF1 checkpoint {self.path}: entry {self.entry} cannot be read "
                f"({describe_cause(self.cause)}); the data file is damaged or missing",
                fix,
            )
        return _with_fix(
            f"TF1 checkpoint {self.path} cannot be read: {describe_cause(self.cause)}. Its "
            "index or data file is damaged or missing",
            fix,
        )


class TF1UnsupportedEntryError(TF1CheckpointError):
    """An entry holds strings.

    ``entry`` is the checkpoint name, ``model_path`` the name it is renamed
    to, ``dtype`` what it holds.

    >>> TF1UnsupportedEntryError = js.errors.TF1UnsupportedEntryError
    >>> raise TF1UnsupportedEntryError(
    ...     path="ckpt/model.ckpt-1000", entry="vocab", model_path="vocab", dtype="string")
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1UnsupportedEntryError: Checkpoint entry vocab (model path vocab)
    in ckpt/model.ckpt-1000 holds string values, which JAX cannot hold. Fix: drop it
    with the name_map rule ('^vocab$', None).
    """

    path: str
    entry: str
    model_path: str
    dtype: str

    def _message(self) -> str:
        import re  # only for the message's rule

        rule = ("^" + re.escape(self.entry) + "$", None)
        return _with_fix(
            f"Checkpoint entry {self.entry} (model path {self.model_path}) in {self.path} "
            f"holds {self.dtype} values, which JAX cannot hold",
            f"drop it with the name_map rule {rule!r}",
        )


class TF1CheckpointMismatchError(_LoadMismatch, TF1CheckpointError):
    """The checkpoint does not match the model given as ``like``.

    The message lists, on both sides, every model path without a checkpoint
    entry, every checkpoint name the model does not use (with the name it
    was renamed to), and every shape or dtype kind that differs, and
    suggests a ``name_map`` rule. ``error.report`` is the
    :class:`jaxscope.tf1.TF1LoadReport`.

    >>> report = js.tf1.TF1LoadReport(
    ...     loaded={}, skipped=(), unused=("model/dense/w",), missing=("dense/w",),
    ...     renamed={"model/dense/w": "model/dense/w"})
    >>> raise js.errors.TF1CheckpointMismatchError(
    ...     path="ckpt/model.ckpt-1000", report=report, nearest={"dense/w": ["model/dense/w"]},
    ...     suggestion=("^model/", ""))
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1CheckpointMismatchError: TF1 checkpoint ckpt/model.ckpt-1000
    does not match the model (loaded 0, skipped 0, unused 1, missing 1, mismatched 0,
    cast 0).
    Model paths with no checkpoint entry (model path <- nearest unused entries):
        dense/w <- model/dense/w
    Checkpoint entries the model does not use (checkpoint name [-> renamed]):
        model/dense/w
    Fix: add name_map rules (ordered (pattern, replacement) regexes), e.g. append the
    rule ('^model/', ''); drop entries with (pattern, None); or pass strict=False to
    load the names that match (mismatched shapes or dtypes always raise).
    """

    path: str = ""

    _entry = "checkpoint entry"
    _entries = "Checkpoint entries"
    _side = "checkpoint"

    @property
    def _head(self) -> str:  # type: ignore[override]
        return f"TF1 checkpoint {self.path} does not match the model"


class TF1DependencyError(ScopeError, ImportError):
    """TensorFlow, needed to read TF1 checkpoints, is not installed.

    An ``ImportError``, not a :class:`TF1CheckpointError`.

    >>> raise js.errors.TF1DependencyError(function="js.load_tf1_checkpoint")
    Traceback (most recent call last):
    ...
    jaxscope.errors.TF1DependencyError: js.load_tf1_checkpoint reads TF1 checkpoints
    with TensorFlow, an optional dependency of jaxscope that is not installed. Fix: pip
    install 'jaxscope[tf]' (or pip install tensorflow-cpu).
    """

    function: str = "js.load_tf1_checkpoint"

    def _message(self) -> str:
        return _with_fix(
            f"{self.function} reads TF1 checkpoints with TensorFlow, an optional "
            "dependency of jaxscope that is not installed",
            "pip install 'jaxscope[tf]' (or pip install tensorflow-cpu)",
        )


class HaikuConversionError(ScopeError, ValueError):
    """Base class of every ``js.from_haiku`` error.

    Every message names the Haiku name (``mlp/~/linear_0/w``) or the model
    path involved, and the fix. A failed conversion leaves the caller's
    trees as they were.

    >>> try:
    ...     js.from_haiku({"linear": {"w": jnp.ones(2)}}, name_map="^linear/")
    ... except js.errors.HaikuConversionError as error:
    ...     print(type(error).__name__)
    HaikuNameMapError
    """


class HaikuArgumentError(_Described, HaikuConversionError):
    """The Haiku params are not a dict (or a tuple of dicts) of numeric arrays, two of the dicts
    hold one name, or ``like`` or ``dtype`` is malformed.

    >>> js.from_haiku({"mlp/~/linear_0": {"w": [[1.0, 2.0]]}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.HaikuArgumentError: Haiku parameter mlp/~/linear_0/w is a list, not
    an array. Fix: pass the arrays Haiku's init (or training) returned, or drop this
    name with skip=('^mlp/\\\\~/linear_0/w$',).
    """

    def _head(self) -> str:
        if self.path and not self.function:
            return f"Haiku parameter {self.path} "
        return super()._head()


class HaikuNameMapError(_Described, HaikuConversionError):
    """``name_map`` or ``skip`` is malformed, or the names it makes do not form a params tree.

    The same cases as :class:`TF1NameMapError`.

    >>> js.from_haiku({"linear": {"w": jnp.ones(2)}}, [(r"^(linear/", "dense/")])
    Traceback (most recent call last):
    ...
    jaxscope.errors.HaikuNameMapError: name_map rule 0: '^(linear/' is not a valid
    regex (missing ), unterminated subpattern at position 1). Fix: correct it
    (re.escape() matches a name literally).
    """


class HaikuMismatchError(_LoadMismatch, HaikuConversionError):
    """The Haiku params do not match the model given as ``like``.

    As :class:`TF1CheckpointMismatchError`: ``error.report`` is a
    :class:`jaxscope.haiku_interop.LoadReport`. ``name_map_given`` says the
    caller's rules replaced the default ones, which drop Haiku's ``~``
    components (``drop_tildes_rule``, where the renamed names kept them).

    >>> hk_params = {"mlp/~/linear_0": {"w": jnp.ones((3, 2))}}
    >>> js.from_haiku(hk_params, like={"dense": {"w": jnp.zeros((3, 2))}})
    Traceback (most recent call last):
    ...
    jaxscope.errors.HaikuMismatchError: The Haiku params do not match the model (loaded
    0, skipped 0, unused 1, missing 1, mismatched 0, cast 0).
    ...
    """

    name_map_given: bool = False
    drop_tildes_rule: tuple[str, str] | None = None

    _head = "The Haiku params do not match the model"
    _entry = "Haiku parameter"
    _entries = "Haiku parameters"
    _side = "Haiku"

    def _hint(self) -> str:
        """How a given ``name_map`` relates to the default, for a mismatch
        that rules would fix."""
        default = "js.haiku_interop.DEFAULT_NAME_MAP"
        if not self.name_map_given:
            return (
                f"(name_map=None applies {default}, which drops Haiku's '~' components; a "
                f"name_map given replaces it: name_map=[*{default}, <your rules>] keeps it.)"
            )
        if self.drop_tildes_rule is not None:
            return (
                "(Haiku's '~' components stay when name_map is given: begin the rules with "
                f"{tuple(self.drop_tildes_rule)!r}, or *{default}, to drop them.)"
            )
        return ""
