"""State (``trainable=False`` variables) through lifted transforms.

A lifted body reads and assigns state as the code around it does. Each
lifted transform carries the call's state through its raw JAX transform as
extra operands: a scan's or a loop's carry, a branch's operands and results,
a checkpointed or vmapped function's argument and result. While the body is
traced, reading a state variable gives the carried value and ``js.assign``
replaces it; what the body leaves is the carry's next value, and after the
transform the call reads the final values, as after the unrolled loop.

The state carried is every ``trainable=False`` variable the call knows: the
ones obtained so far (and, in ``init``, the ones the body creates, found by
its discovery trace), and in ``apply`` the leaves of the state tree not yet
obtained, which the body may obtain first. A variable the body leaves alone
passes through unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from jaxscope._src import trees
from jaxscope._src.context import Frame, Mode

State = dict[str, Any]


class StateCarry:
    """The state one lifted transform carries through its body."""

    def __init__(self, frame: Frame, exclude: frozenset[str] = frozenset()):
        self.frame = frame
        self.names = [
            name
            for name, record in frame.records.items()
            if not record.trainable and name not in exclude
        ]
        if frame.mode is Mode.APPLY and frame.state:
            self.names += [
                name
                for name in trees.flatten(frame.state)
                if name not in frame.records
                and name not in exclude
                and trees.lookup(frame.state, name, trees.MISSING) is not trees.MISSING
            ]

    def values(self) -> State:
        """The carried variables' values now, in the caller's trace."""
        records, tree = self.frame.records, self.frame.state
        return {
            name: records[name].value if name in records else trees.lookup(tree, name)
            for name in self.names
        }

    @contextlib.contextmanager
    def inside(self, values: State) -> Iterator[None]:
        """While a body is traced: reading a variable of ``values`` gives its
        value there. The caller's values are back afterwards; a variable the
        body obtained first has its value from the state tree until
        :meth:`finish`."""
        frame = self.frame
        saved: State = {}
        unobtained: State = {}
        for name, value in values.items():
            record = frame.records.get(name)
            if record is None:
                unobtained[name] = value
            else:
                saved[name] = record.value
                record.value = value
        tree = frame.state
        if unobtained:
            frame.state = trees.replace_paths(tree, unobtained)
        try:
            yield
        finally:
            frame.state = tree
            for name, value in saved.items():
                frame.records[name].value = value
            for name in unobtained:
                record = frame.records.get(name)
                if record is not None:
                    record.value = trees.lookup(tree, name)

    def collect(self, values: State) -> State:
        """Inside the body, at its end: the carried variables' values, for the
        carry's next value (``values``: those the body started with)."""
        records = self.frame.records
        return {name: records[name].value if name in records else values[name] for name in values}

    def finish(self, values: State) -> None:
        """After the transform: the call reads ``values`` from now on."""
        records = self.frame.records
        for name, value in values.items():
            record = records.get(name)
            if record is not None:
                record.value = value


@contextlib.contextmanager
def unchanged(frame: Frame) -> Iterator[None]:
    """An abstract (discovery) trace of a body leaves the state's values as
    they were: its assignments are values of that trace only."""
    saved = {name: r.value for name, r in frame.records.items() if not r.trainable}
    try:
        yield
    finally:
        for name, value in saved.items():
            frame.records[name].value = value
