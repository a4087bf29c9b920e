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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jax.extend.core import get_opaque_trace_state

from jaxscope._src import errors


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


# A node of ScopeCounts: [count, below], how often one full scope name was
# opened and the nodes one name component below it (a dict, or None until
# there is one: most scopes hold no sub-scopes). A list, not an object: every
# new scope name makes one, on the trace path.
CountNode = list
_COUNT, _BELOW = 0, 1


class ScopeCounts:
    """How often each full scope name has been opened in a call: TF1's table
    for ``default_name`` numbering, as a tree of name components.

    Exiting a scope entered by name forgets every count below it (TF1 sets
    them to 0) by dropping that sub-tree, whatever its size or depth; a
    count of 0 and an absent name are the same. While a mark is held, every
    change is logged, so that the changes since a mark can be undone (a
    re-entered captured scope restores the table on exit, as TF1 does) and
    redone (a lifted body traced again)."""

    __slots__ = ("root", "_log", "_marks")

    def __init__(self):
        self.root: CountNode = [0, None]
        self._log: list[tuple[CountNode, int, Any]] = []
        self._marks = 0

    def node(self, name: str, start: CountNode | None = None) -> CountNode:
        """The node of ``name`` (components joined by ``/``; ``""`` is
        ``start`` itself) under ``start`` (the root by default), made where
        missing (with count 0)."""
        node = self.root if start is None else start
        if not name:
            return node
        for part in name.split("/"):
            below = node[_BELOW]
            if below is None:
                below = node[_BELOW] = {}
            node = below.get(part)
            if node is None:
                node = below[part] = [0, None]
        return node

    def open(self, name: str, start: CountNode | None = None) -> CountNode:
        """Counts an opening of ``name`` under ``start``; returns its node."""
        below = (self.root if start is None else start)[_BELOW]
        node = below.get(name) if below is not None else None
        if node is None:
            if below is None or "/" in name or not name:
                node = self.node(name, start)
            else:  # the common case: a new name of one component
                node = below[name] = [0, None]
        if self._marks:
            self._log.append((node, _COUNT, node[_COUNT]))
        node[_COUNT] += 1
        return node

    def count(self, name: str, start: CountNode) -> int:
        """How often ``name`` under ``start`` has been opened (0 if never)."""
        node = start
        for part in name.split("/"):
            below = node[_BELOW]
            node = below.get(part) if below is not None else None
            if node is None:
                return 0
        return node[_COUNT]

    def forget_below(self, node: CountNode) -> None:
        """Forgets the counts of every name below ``node``'s."""
        if node[_BELOW] is not None:
            if self._marks:
                self._log.append((node, _BELOW, node[_BELOW]))
            node[_BELOW] = None

    def mark(self) -> int:
        """Starts logging changes; :meth:`undo` returns to this point."""
        self._marks += 1
        return len(self._log)

    def undo(self, mark: int) -> list:
        """Undoes the changes made since ``mark``; returns them for :meth:`redo`."""
        log, changes = self._log, []
        while len(log) > mark:
            node, index, old = log.pop()
            changes.append((node, index, node[index]))
            node[index] = old
        return changes

    def redo(self, changes: list) -> None:
        log = self._log if self._marks else None
        for node, index, value in reversed(changes):
            if log is not None:
                log.append((node, index, node[index]))
            node[index] = value

    def release(self, marks: int = 1) -> None:
        """Drops ``marks`` marks; with none left, changes are not logged."""
        self._marks -= marks
        if not self._marks:
            self._log.clear()


@dataclass(eq=False)
class Frame:
    """The state of one ``init`` or ``apply`` call."""

    mode: Mode
    rng: Any
    allow_state: bool
    params: dict | None = None  # the trees given to apply
    state: dict | None = None
    records: dict[str, VariableRecord] = field(default_factory=dict)
    # The names obtained so far as a tree of components, each leaf holding
    # its full name ({"a": {"w": "a/w"}}): finds a name that would be both a
    # variable and a scope, and gives init's trees their shape.
    names: dict = field(default_factory=dict)
    # default_name numbering: how often each full scope name was opened.
    scope_counts: ScopeCounts = field(default_factory=ScopeCounts)
    # (name, regularizer) in creation order, evaluated when asked for.
    regularizers: list[tuple[str, Callable]] = field(default_factory=list)
    rng_counts: dict[str, int] = field(default_factory=dict)
    # Scopes and op-name scopes currently entered, innermost last.
    scope_stack: list = field(default_factory=list)
    op_path: str = ""
    current_scope: Any = None
    trace_state: Any = None
    variable_key: Any = None
    stream_key: Any = None
    alive: bool = True
    # Set inside lifted transforms (jaxscope.lift): values handed out
    # without bookkeeping while a body is re-traced, the innermost
    # layer_stack being discovered, and how many lifted bodies are open.
    replay: dict[str, Any] | None = None
    stack: Any = None
    lift_depth: int = 0

    def __post_init__(self):
        self.trace_state = get_opaque_trace_state()

    def in_outer_trace(self) -> bool:
        """Whether JAX is tracing at the level this call started at, rather
        than inside a raw transform opened by the model function."""
        return get_opaque_trace_state() == self.trace_state


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
        raise errors.NoTransformError(
            f"{what} can only be called inside a function transformed by "
            "js.transform or js.transform_with_state, while its init or apply "
            "runs. Fix: f = js.transform(model); params = f.init(rng, ...)."
        )
    return frames[-1]


def current_or_none() -> Frame | None:
    frames = local.frames
    return frames[-1] if frames else None


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Location(tuple):
    """``(file, line)`` of a call, shown as ``file:line`` (formatted only when
    an error message needs it)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]}"


def user_location(depth: int = 1) -> Location:
    """Where the innermost caller outside jaxscope is, looking outwards from
    ``sys._getframe(depth)`` (this function's caller is 1): the frames
    closer than ``depth`` must be jaxscope's. Only the frames looked at are
    materialized, so a caller that knows its depth makes this cheap."""
    f = sys._getframe(depth)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR):
        f = f.f_back
    if f is None:
        return Location(("<unknown>", 0))
    return Location((f.f_code.co_filename, f.f_lineno))
