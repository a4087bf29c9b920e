"""The ``default_name`` count table (``ScopeCounts``) against a plain model
of TF1's table: a dict from full scope name to count, copied whole at a mark.

The table keeps counts as a tree, forgets a sub-tree at once, numbers
siblings from where the last numbering stopped, and undoes changes through a
log instead of copies; whatever the order of openings, resets, marks, undos
and redos, it must number and count exactly as the plain model does.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxscope as js
from jaxscope._src.scope_counts import ScopeCounts

# Names that collide as TF1's numbering makes them collide: "a_1" is both a
# name given by hand and the first numbered "a".
# Few names, so that random programs hit the same ones again and again.
_PARTS = ("a", "a_1", "a_2", "b")
_NAMES = st.lists(st.sampled_from(_PARTS), min_size=1, max_size=2).map("/".join)
_PARENTS = st.sampled_from(("", "a", "b"))
_OPS = st.one_of(
    st.tuples(st.just("open"), _NAMES),
    st.tuples(st.just("number"), _PARENTS, st.just("a")),
    st.tuples(st.just("number"), _PARENTS, st.just("a")),
    st.tuples(st.just("forget"), _PARENTS),
    st.tuples(st.just("mark")),
    st.tuples(st.just("restore")),
    st.tuples(st.just("undo_redo")),
)


class _PlainTable:
    """TF1's table as TF1 keeps it: full name -> count, copied at a mark."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.marks: list[dict[str, int]] = []

    def open(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def unique_name(self, prefix: str, parent: str) -> str:
        def full(name: str) -> str:
            return f"{parent}/{name}" if parent else name

        if not self.counts.get(full(prefix)):
            return prefix
        i = 1
        while self.counts.get(full(f"{prefix}_{i}")):
            i += 1
        return f"{prefix}_{i}"

    def forget_below(self, parent: str) -> None:
        below = f"{parent}/" if parent else ""
        self.counts = {
            k: v for k, v in self.counts.items() if not k.startswith(below) or k == parent
        }


def _run(ops: list[tuple]) -> None:
    table, plain, marks = ScopeCounts(), _PlainTable(), []
    for op in ops:
        kind = op[0]
        if kind == "open":
            table.open(op[1])
            plain.open(op[1])
        elif kind == "number":
            parent, prefix = op[1], op[2]
            name = table.unique_name(prefix, table.node(parent))
            assert name == plain.unique_name(prefix, parent), (ops, op)
            full = f"{parent}/{name}" if parent else name
            table.open(name, table.node(parent))
            plain.open(full)
        elif kind == "forget":
            table.forget_below(table.node(op[1]))
            plain.forget_below(op[1])
        elif kind == "mark":
            marks.append(table.mark())
            plain.marks.append(dict(plain.counts))
        elif kind == "restore" and marks:
            table.restore(marks.pop())
            plain.counts = plain.marks.pop()
        elif kind == "undo_redo" and marks:
            table.redo(table.undo(marks[-1]))  # a lifted body traced again
        for name, count in plain.counts.items():
            assert table.count(name, table.root) == count, (ops, name)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OPS, max_size=40))
def test_the_table_numbers_and_counts_as_tf1s_plain_table(ops):
    _run(ops)


def test_numbering_continues_after_siblings_opened_by_hand():
    table = ScopeCounts()
    for name in ("a", "a_1", "a_3"):
        table.open(name)
    numbered = []
    for _ in range(3):
        numbered.append(table.unique_name("a", table.root))
        table.open(numbered[-1])
    assert numbered == ["a_2", "a_4", "a_5"]


def test_numbering_starts_again_after_the_parent_is_reset():
    table = ScopeCounts()
    parent = table.open("p")
    for _ in range(3):
        table.open(table.unique_name("a", parent), parent)
    table.forget_below(parent)
    assert table.unique_name("a", parent) == "a"
    table.open("a", parent)
    assert table.unique_name("a", parent) == "a_1"


def test_numbering_inside_a_restored_mark_is_forgotten():
    table = ScopeCounts()
    table.open("a")
    table.open(table.unique_name("a", table.root))  # a_1, before the mark
    mark = table.mark()
    for _ in range(3):
        table.open(table.unique_name("a", table.root))  # a_2, a_3, a_4
    table.restore(mark)
    assert table.unique_name("a", table.root) == "a_2"


def test_numbering_is_redone_with_the_counts():
    table = ScopeCounts()
    table.open("a")
    table.open(table.unique_name("a", table.root))
    mark = table.mark()
    for _ in range(2):
        table.open(table.unique_name("a", table.root))
    table.redo(table.undo(mark))  # a lifted body traced again
    assert table.unique_name("a", table.root) == "a_4"


def test_thousands_of_siblings_get_tf1s_names_in_order():
    names = []

    def model():
        for _ in range(2_000):
            with js.variable_scope(None, default_name="dense") as scope:
                names.append(scope.name)

    js.transform(model).init(0)
    assert names == ["dense"] + [f"dense_{i}" for i in range(1, 2_000)]
