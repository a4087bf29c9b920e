"""TF1's ``default_name`` count table, the one place that keeps it.

A call counts how often each full scope name has been opened, to number
``variable_scope(None, default_name=...)`` exactly as TF1 does (``layer``,
``layer_1``, ...). Scopes open, number and forget names through
:class:`ScopeCounts`; lifted transforms mark, undo and redo its changes when
they trace a body more than once.
"""

from __future__ import annotations

from typing import Any

# A node of ScopeCounts: [count, below, next_free], how often one full scope
# name was opened, the nodes one name component below it (a dict, or None
# until there is one: most scopes hold no sub-scopes), and, per default_name
# prefix p numbered below it, an i such that p_1 ... p_{i-1} are all opened
# (a dict, or None): the numbering starts there, so numbering n siblings is
# linear in n. A list, not an object: every new scope name makes one, on the
# trace path.
CountNode = list
_COUNT, BELOW, _NEXT_FREE = 0, 1, 2
_BELOW = BELOW  # a scope's exit tests node[BELOW] before forgetting what is below


class ScopeCounts:
    """How often each full scope name has been opened in a call: TF1's table
    for ``default_name`` numbering, as a tree of name components.

    Exiting a scope entered by name forgets every count below it (TF1 sets
    them to 0) by dropping that sub-tree, whatever its size or depth; a
    count of 0 and an absent name are the same. Counts only grow otherwise,
    so a node remembers, per ``default_name`` prefix, how far its numbering
    has got, and forgets it with the counts below it. While a mark is held,
    every change is logged, so that the changes since a mark can be undone
    (a re-entered captured scope restores the table on exit, as TF1 does)
    and redone (a lifted body traced again): never a copy of the table."""

    __slots__ = ("root", "_log", "_marks")

    def __init__(self):
        self.root: CountNode = [0, None, None]
        # (node or next_free dict, index or prefix, old value)
        self._log: list[tuple[Any, Any, Any]] = []
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
                node = below[part] = [0, None, None]
        return node

    def open(self, name: str, start: CountNode | None = None) -> CountNode:
        """Counts an opening of ``name`` under ``start``; returns its node."""
        below = (self.root if start is None else start)[_BELOW]
        node = below.get(name) if below is not None else None
        if node is None:
            if below is None or "/" in name or not name:
                node = self.node(name, start)
            else:  # the common case: a new name of one component
                node = below[name] = [0, None, None]
        if self._marks:
            self._log.append((node, _COUNT, node[_COUNT]))
        node[_COUNT] += 1
        return node

    def count(self, name: str, start: CountNode) -> int:
        """How often ``name`` under ``start`` has been opened (0 if never)."""
        node = start
        if "/" not in name:  # the common case: one component
            below = node[_BELOW]
            node = below.get(name) if below is not None else None
            return 0 if node is None else node[_COUNT]
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
                self._log.append((node, _NEXT_FREE, node[_NEXT_FREE]))
            node[_BELOW] = node[_NEXT_FREE] = None

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

    def unique_name(self, prefix: str, parent: CountNode) -> str:
        """TF1's ``default_name`` numbering under the scope of node ``parent``:
        ``prefix`` if unused there, else ``prefix_i`` for the smallest
        ``i >= 1`` whose full name has not been opened. Starts where the
        last numbering of ``prefix`` there stopped: linear in the number of
        siblings, not quadratic."""
        if not self.count(prefix, parent):
            return prefix
        next_free = parent[_NEXT_FREE]
        if next_free is None:  # its entries are logged, not its creation
            next_free = parent[_NEXT_FREE] = {}
        start = i = next_free.get(prefix, 1)
        while self.count(f"{prefix}_{i}", parent):
            i += 1
        if i != start:
            if self._marks:  # undone with the counts: 1 is as good as absent
                self._log.append((next_free, prefix, start))
            next_free[prefix] = i
        return f"{prefix}_{i}"

    def restore(self, mark: int) -> None:
        """Undoes the changes since ``mark`` and drops that mark (the exit of
        a re-entered captured scope: TF1 restores the table as it was)."""
        self.undo(mark)
        self.release()
