"""Looking at a model's variables without creating them.

Both functions trace ``f.init`` under ``jax.eval_shape``: no parameter memory
is allocated, so they work for models too large for the machine.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from typing import Any

import numpy as np
from jax.sharding import PartitionSpec

from jaxscope._src import errors, trees
from jaxscope._src.transform import Transformed, TransformedWithState, variable_records

_COLUMNS = ("name", "shape", "dtype", "params", "bytes", "sharding", "trainable")
_RIGHT = {"params", "bytes"}


def _bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("KB", "MB", "GB", "TB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One row of a :class:`Summary`: a variable, or a scope's totals.

    Attributes:
        name: the full name (``encoder/dense/kernel``); ``""`` for the total.
        depth: the number of name components (0 for the total).
        is_scope: whether the row totals a scope rather than a variable.
        variables: the number of variables (below it, for a scope).
        params: the number of elements (of all variables below, for a scope).
        bytes: their size in bytes.
        shape: the variable's shape (``None`` for a scope).
        dtype: the variable's dtype name (``None`` for a scope).
        sharding: its ``PartitionSpec``, ``None`` when unsharded or a scope.
        trainable: ``True`` for params, ``False`` for state; for a scope,
            ``None`` when it holds both.
    """

    name: str
    depth: int
    is_scope: bool
    variables: int
    params: int
    bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    sharding: PartitionSpec | None = None
    trainable: bool | None = None

    def cells(self) -> tuple[str, ...]:
        label = "total" if self.depth == 0 else "  " * (self.depth - 1) + self.name
        if self.is_scope:
            label += "/" if self.depth else ""
        trainable = {True: "yes", False: "no", None: "mixed" if self.variables else ""}[
            self.trainable
        ]
        return (
            label,
            "" if self.shape is None else str(self.shape),
            self.dtype or "",
            f"{self.params:,}",
            _bytes(self.bytes),
            "" if self.is_scope else "-" if self.sharding is None else str(self.sharding),
            trainable,
        )


@dataclasses.dataclass(frozen=True)
class Summary:
    """The variables of a model, as a table with totals per scope.

    ``str()`` (and ``print``) gives the table as plain text, except that
    printed to a terminal (``sys.stdout.isatty()``) it is drawn by ``rich``;
    ``render(rich=...)`` chooses explicitly. Rich consoles (``rich.print``,
    Jupyter with rich) render the object itself through ``__rich__``.

    Attributes:
        rows: the table's rows, top to bottom: each scope's totals followed
            by its variables and sub-scopes in creation order, the total last.
        depth: the deepest level shown (``None``: every variable).
    """

    rows: tuple[SummaryRow, ...]
    depth: int | None = None

    @property
    def total(self) -> SummaryRow:
        """The last row: every variable's count and bytes."""
        return self.rows[-1]

    def __str__(self) -> str:
        return self.render(rich=None)

    __repr__ = __str__

    def render(self, rich: bool | None = None, width: int | None = None) -> str:
        """The table as text: plain, or drawn by ``rich`` (``None``: rich
        when ``sys.stdout`` is a terminal). ``width`` bounds rich's table."""
        if rich is None:
            rich = sys.stdout.isatty()
        if not rich:
            return _plain([_COLUMNS, *(row.cells() for row in self.rows)])
        from rich.console import Console  # only for terminals and rich output

        out = io.StringIO()
        console = Console(file=out, width=width or 200, force_terminal=sys.stdout.isatty())
        console.print(self.__rich__())
        return out.getvalue().rstrip("\n")

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table()
        for column in _COLUMNS:
            table.add_column(column, justify="right" if column in _RIGHT else "left")
        for row in self.rows:
            if row.depth == 0:
                table.add_section()
            table.add_row(*row.cells(), style="bold" if row.is_scope else None)
        return table


def _plain(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row):
        cells = (
            cell.rjust(width) if column in _RIGHT else cell.ljust(width)
            for cell, width, column in zip(row, widths, _COLUMNS, strict=True)
        )
        return "  ".join(cells).rstrip()

    return "\n".join(line(row) for row in rows)


def summary(
    f: Transformed | TransformedWithState, rng: Any, *args, depth: int | None = None, **kwargs
) -> Summary:
    """A table of every variable ``f.init`` creates, with totals per scope.

    Columns: name, shape, dtype, params (elements), bytes, sharding,
    trainable. Each scope, at every depth, has a row with the totals of
    everything below it (its trainable column is ``mixed`` when it holds
    params and state), followed by its variables and sub-scopes in creation
    order; the last row is the total. Computed with ``jax.eval_shape``, so
    no memory is used.

    Args:
        f: a ``js.transform`` or ``js.transform_with_state`` result.
        rng: the key ``init`` would get.
        *args: ``init``'s inputs (only their shapes and dtypes matter).
        depth: show rows down to this many name components: deeper scopes
            and variables are collapsed into their scope's totals row
            (``depth=1``: one row per top-level scope). ``None``: all.
        **kwargs: ``init``'s keyword inputs.

    Returns:
        A :class:`Summary`: ``print`` it (plain text, or a ``rich`` table
        in a terminal), or read its ``rows``.

    >>> def model(x):
    ...     with js.variable_scope("encoder"):
    ...         h = js.nn.dense(x, 4, name="dense")
    ...     return js.nn.dense(h, 2, use_bias=False, name="out")
    >>> table = js.summary(js.transform(model), 0, jnp.ones((1, 3)))
    >>> print(table)
    name                      shape   dtype    params  bytes  sharding  trainable
    encoder/                                       16   64 B            yes
      encoder/dense/                               16   64 B            yes
        encoder/dense/kernel  (3, 4)  float32      12   48 B  -         yes
        encoder/dense/bias    (4,)    float32       4   16 B  -         yes
    out/                                            8   32 B            yes
      out/kernel              (4, 2)  float32       8   32 B  -         yes
    total                                          24   96 B            yes
    >>> print(js.summary(js.transform(model), 0, jnp.ones((1, 3)), depth=1))
    name      shape  dtype  params  bytes  sharding  trainable
    encoder/                    16   64 B            yes
    out/                         8   32 B            yes
    total                       24   96 B            yes
    >>> table.total.params
    24
    """
    if depth is not None and depth < 0:
        raise errors.ArgumentError(
            function="js.summary",
            argument="depth",
            problem=f"must be >= 0 or None, got {depth}",
            fix="depth=None for every variable, or the number of name components to group by",
        )
    records = variable_records(f, rng, *args, **kwargs)
    variables: list[SummaryRow] = []
    for name, record in records.items():
        shape = tuple(record.value.shape)
        size = int(np.prod(shape, dtype=np.int64))
        variables.append(
            SummaryRow(
                name=name,
                depth=name.count("/") + 1,
                is_scope=False,
                variables=1,
                params=size,
                bytes=size * _itemsize(record.value.dtype),
                shape=shape,
                dtype=str(record.value.dtype),
                sharding=record.sharding,
                trainable=record.trainable,
            )
        )
    return Summary(tuple(_with_scopes(variables, depth)), depth)


def _itemsize(dtype: Any) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # an extended dtype such as a PRNG key's
        return getattr(dtype, "itemsize", 0)


def _with_scopes(variables: list[SummaryRow], depth: int | None) -> list[SummaryRow]:
    """Scope rows (totals) interleaved with the variables, in the order the
    scopes first appear; rows deeper than ``depth`` left out."""
    scopes: dict[str, list[SummaryRow]] = {}
    for row in variables:
        parts = row.name.split("/")
        for level in range(len(parts) - 1):
            scopes.setdefault("/".join(parts[: level + 1]), []).append(row)
    totals = {name: _totals(name, rows) for name, rows in scopes.items()}
    out: list[SummaryRow] = []
    shown: set[str] = set()
    for row in variables:
        parts = row.name.split("/")
        for level in range(len(parts) - 1):
            scope = "/".join(parts[: level + 1])
            if scope not in shown and (depth is None or level + 1 <= depth):
                shown.add(scope)
                out.append(totals[scope])
        if depth is None or row.depth <= depth:
            out.append(row)
    out.append(_totals("", variables))
    return out


def _totals(scope: str, rows: list[SummaryRow]) -> SummaryRow:
    trainable = {row.trainable for row in rows}
    return SummaryRow(
        name=scope,
        depth=0 if not scope else scope.count("/") + 1,
        is_scope=True,
        variables=len(rows),
        params=sum(row.params for row in rows),
        bytes=sum(row.bytes for row in rows),
        trainable=trainable.pop() if len(trainable) == 1 else None,
    )


def partition_specs(f: Transformed | TransformedWithState, rng: Any, *args, **kwargs) -> Any:
    """The tree of ``PartitionSpec`` matching ``f.init``'s output.

    Unsharded variables get ``PartitionSpec()`` (replicated). For a
    ``TransformedWithState`` it is a ``(params_specs, state_specs)`` pair. Use
    it for ``jax.jit(f.init, out_shardings=...)`` or to shard loaded params.

    >>> def model():
    ...     return js.get_variable("w", [8, 2], sharding=("data", None))
    >>> js.partition_specs(js.transform(model), 0)
    {'w': P('data', None)}
    """
    records = variable_records(f, rng, *args, **kwargs)
    params: dict[str, PartitionSpec] = {}
    state: dict[str, PartitionSpec] = {}
    for name, record in records.items():
        spec = PartitionSpec() if record.sharding is None else record.sharding
        (params if record.trainable else state)[name] = spec
    if isinstance(f, TransformedWithState):
        return trees.unflatten(params), trees.unflatten(state)
    return trees.unflatten(params)
