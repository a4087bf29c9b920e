"""Looking at a model's variables without creating them.

Both functions trace ``f.init`` under ``jax.eval_shape``: no parameter memory
is allocated, so they work for models too large for the machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jax.sharding import PartitionSpec

from jaxscope import trees
from jaxscope.transform import Transformed, TransformedWithState, variable_records

__all__ = ["summary", "partition_specs"]


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def summary(f: Transformed | TransformedWithState, rng: Any, *args, **kwargs) -> str:
    """A table of every variable ``f.init`` creates, with totals per scope.

    Columns: name, shape, dtype, size, bytes, trainable, sharding. Computed
    with ``jax.eval_shape``, so no memory is used.

    >>> def model(x):
    ...     with js.variable_scope("dense"):
    ...         w = js.get_variable("kernel", [x.shape[-1], 4])
    ...     return x @ w
    >>> print(js.summary(js.transform(model), 0, jnp.ones((1, 3))))
    name          shape   dtype    size  bytes  trainable  sharding
    dense/kernel  (3, 4)  float32  12    48     yes        -
    <BLANKLINE>
    scope  variables  size  bytes
    dense  1          12    48
    total  1          12    48
    """
    records = variable_records(f, rng, *args, **kwargs)
    rows = [("name", "shape", "dtype", "size", "bytes", "trainable", "sharding")]
    totals: dict[str, list[int]] = {}
    for name, record in records.items():
        size = int(np.prod(record.shape, dtype=np.int64))
        nbytes = size * np.dtype(record.dtype).itemsize
        rows.append(
            (
                name,
                str(tuple(record.shape)),
                str(np.dtype(record.dtype)),
                str(size),
                _human(nbytes),
                "yes" if record.trainable else "no",
                "-" if record.sharding is None else str(record.sharding),
            )
        )
        scope = name.split("/", 1)[0] if "/" in name else "(root)"
        for key in (scope, "total"):
            count = totals.setdefault(key, [0, 0, 0])
            count[0] += 1
            count[1] += size
            count[2] += nbytes
    scope_rows = [("scope", "variables", "size", "bytes")]
    for scope, (count, size, nbytes) in sorted(totals.items(), key=lambda kv: kv[0] == "total"):
        scope_rows.append(
            (scope, str(count), _human(size) if size >= 1000 else str(size), _human(nbytes))
        )
    return _table(rows) + "\n\n" + _table(scope_rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
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
