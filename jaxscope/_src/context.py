"""The per-call context: everything one ``init`` or ``apply`` call tracks.

A transform call pushes one :class:`Frame` on a thread-local stack and pops it
when the call ends, also when the model function raises, so nothing outlives
the call and threads never see each other's scopes. All bookkeeping of a call
(which names were obtained, the scope stack, the ``default_name`` counts, the
regularization losses) lives in that one object.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
from jax.extend.core import find_top_trace

from jaxscope._src import errors
from jaxscope._src.scope_counts import ScopeCounts

with jax.ensure_compile_time_eval():
    EAGER = find_top_trace(None)  # JAX's trace of operations run one by one


class Mode(enum.Enum):
    INIT = "init"
    APPLY = "apply"


@dataclass(slots=True)
class VariableRecord:
    """What a call knows about one variable it has obtained."""

    name: str
    value: Any
    shape: tuple[int, ...]
    dtype: Any
    trainable: bool
    origin: Location
    initial_value: Any = None
    constraint: Callable | None = None
    sharding: Any = None
    # (initializer, shape, dtype, needs_key) to re-create the value outside a
    # lifted transform's discovery trace; None for values found in apply.
    init_spec: tuple | None = None
    # The js.layer_stack that created it (its value has a leading layer axis).
    stack: Any = None


class LayerValues(Protocol):
    """A ``js.layer_stack`` whose body is being discovered: what the body
    sees of a stacked variable found in apply's tree."""

    def layer_value(self, name: str, value: Any) -> Any:
        """The value the body gets for the stacked ``value`` of ``name``."""


@dataclass(slots=True, eq=False)
class Body:
    """The function body a call is tracing: the model function, or the body
    of a lifted transform (``js.scan``, ``js.layer_stack``, ...), which gets
    its own ``Body`` while it is traced. The one way lifting reaches
    ``get_variable`` and ``next_rng_key``."""

    # JAX's trace when the body started (a weak reference, see trace_now):
    # a variable created at another level would be a value of a raw
    # transform opened inside it.
    trace: weakref.ref
    # next_rng_key's base key in this body, and the keys drawn per scope.
    stream_key: Any = None
    rng_counts: dict[str, int] = field(default_factory=dict)
    # While a lifted body is traced again (or initializers run again): the
    # values to hand out by name, without bookkeeping.
    replay: dict[str, Any] | None = None
    # The layer_stack being discovered, if any.
    stack: LayerValues | None = None
    # Whether the body started outside any trace (operations run one by one).
    eager: bool = field(init=False)

    def __post_init__(self):
        self.eager = self.trace() is EAGER


@dataclass(eq=False)
class Frame:
    """The state of one ``init`` or ``apply`` call."""

    mode: Mode
    rng: Any
    allow_state: bool
    params: dict | None = None  # the trees given to apply
    state: dict | None = None
    # What the call knows of each variable, by full name in creation order
    # (read through ``records``): apply's plain lookups store a tuple (see
    # ``found``), made a VariableRecord when anything else reads them.
    _records: dict[str, Any] = field(default_factory=dict)
    # The names whose entries in _records are still tuples of (value,
    # shape, dtype, creation site, constraint), in creation order.
    found: list[str] = field(default_factory=list)
    # The names obtained so far as a tree of components, each leaf holding
    # its full name ({"a": {"w": "a/w"}}): finds a name that would be both a
    # variable and a scope, and gives init's trees their shape.
    names: dict = field(default_factory=dict)
    # Whether ``names`` holds every name obtained so far. apply's plain
    # lookups leave theirs out until the first name claimed otherwise (see
    # variables._claim), which enters them all: two of them cannot conflict,
    # each being an array leaf of the params tree.
    names_complete: bool = False
    # The sub-trees of ``names`` by scope name ("" is ``names``), and those
    # of ``params`` found so far: a name's claim and lookup walk one
    # component, however deep its scope (see trees.indexed_subtree).
    name_nodes: dict[str, dict] = field(init=False)
    param_nodes: dict[str, dict] = field(init=False)
    # default_name numbering: how often each full scope name was opened.
    scope_counts: ScopeCounts = field(default_factory=ScopeCounts)
    # (name, regularizer) in creation order, evaluated when asked for.
    regularizers: list[tuple[str, Callable]] = field(default_factory=list)
    # Scopes and op-name scopes currently entered, innermost last.
    scope_stack: list = field(default_factory=list)
    op_path: str = ""
    current_scope: Any = None
    variable_key: Any = None
    alive: bool = True
    # The body being traced: the model function's, or a lifted body's.
    body: Body = field(init=False)

    def __post_init__(self):
        self.body = Body(trace_now())
        self.name_nodes = {"": self.names}
        self.param_nodes = {"": self.params} if type(self.params) is dict else {}

    @property
    def records(self) -> dict[str, VariableRecord]:
        """A record of each variable obtained so far, by full name, in
        creation order."""
        if self.found:
            records = self._records
            for name in self.found:
                value, shape, dtype, origin, constraint = records[name]
                if type(origin) is not Location:
                    origin = _new_location(Location, origin)
                records[name] = VariableRecord(
                    name, value, shape, dtype, True, origin, value, constraint
                )
            self.found.clear()
        return self._records

    def in_outer_trace(self) -> bool:
        """Whether JAX is tracing at the level the current body started at,
        rather than inside a raw transform opened by the model function."""
        return find_top_trace(None) is self.body.trace()


def trace_now() -> weakref.ref:
    """JAX's current trace, by identity (weakly: a scope that outlives its
    call must not keep a finished trace's values alive)."""
    return weakref.ref(find_top_trace(None))


def tracing() -> bool:
    """Whether JAX is tracing (``jit``, ``make_jaxpr``, a ``scan`` body, ...)
    rather than running operations one by one."""
    return find_top_trace(None) is not EAGER


class _Local(threading.local):
    def __init__(self):
        self.frames: list[Frame] = []


local = _Local()
"""This thread's active calls (``local.frames``, innermost last)."""


def push(frame: Frame) -> None:
    local.frames.append(frame)


def pop(frame: Frame) -> None:
    frames = local.frames
    assert frames and frames[-1] is frame, "jaxscope frames popped out of order"
    frames.pop()
    frame.alive = False


def current(what: str = "this function") -> Frame:
    """The innermost active call, or a ``NoTransformError``."""
    frames = local.frames
    if not frames:
        raise errors.NoTransformError(function=what)
    return frames[-1]


def current_or_none() -> Frame | None:
    frames = local.frames
    return frames[-1] if frames else None


PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Location(tuple):
    """Where a call was made: ``(code, offset)``, its code object and the
    offset of its instruction, shown as ``file:line``. The line is worked
    out only when an error message needs it: every variable records where
    it was created, and few are ever shown."""

    __slots__ = ()

    def __str__(self) -> str:
        code, offset = self
        if code is None:
            return "<unknown>:0"
        line = next((n for start, end, n in code.co_lines() if start <= offset < end), None)
        return f"{code.co_filename}:{code.co_firstlineno if line is None else line}"


_new_location = tuple.__new__
_UNKNOWN = _new_location(Location, (None, 0))


def caller_location(f: Any) -> Location:
    """Where the Python frame ``f`` is, or the first frame outside jaxscope
    from ``f`` outwards: a caller that holds its caller's frame skips the
    frames up to it."""
    while f is not None and f.f_code.co_filename.startswith(PACKAGE_DIR):
        f = f.f_back
    if f is None:
        return _UNKNOWN
    return _new_location(Location, (f.f_code, f.f_lasti))


def user_location(depth: int = 1) -> Location:
    """Where the innermost caller outside jaxscope is, looking outwards from
    ``sys._getframe(depth)`` (this function's caller is 1): the frames
    closer than ``depth`` must be jaxscope's. Only the frames looked at are
    materialized, so a caller that knows its depth makes this cheap."""
    return caller_location(sys._getframe(depth))
