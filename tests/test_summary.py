"""js.summary (DESIGN §7): a table of every variable with totals per scope
at every depth, computed under jax.eval_shape; plain text unless printed to
a terminal, where rich draws it."""

from __future__ import annotations

import io
import sys

import jax.numpy as jnp
import pytest
from jax.sharding import PartitionSpec as P

import jaxscope as js

X = jnp.ones((2, 3))


def model(x):
    with js.variable_scope("encoder"):
        h = js.nn.dense(x, 4, name="dense")
        with js.variable_scope("norm"):
            scale = js.get_variable("scale", [4], dtype=jnp.bfloat16)
            count = js.get_variable("count", [], jnp.int32, trainable=False)
            js.assign("count", count + 1)
    js.get_variable("step", [], jnp.int32, trainable=False)
    return js.nn.dense(h * scale, 2, name="out")


F = js.transform_with_state(model)


def rows_of(table):
    return {row.name: row for row in table.rows}


def sizes_below(prefix, trees):
    """Elements and bytes of the real variables under ``prefix``."""
    leaves = [
        v
        for tree in trees
        for name, v in js.flatten(tree).items()
        if not prefix or name == prefix or name.startswith(prefix + "/")
    ]
    return sum(v.size for v in leaves), sum(v.size * v.dtype.itemsize for v in leaves)


def test_every_scope_at_every_depth_has_the_totals_of_the_variables_below_it():
    table = js.summary(F, 0, X)
    params, state = F.init(0, X)
    rows = rows_of(table)
    scopes = [r for r in table.rows if r.is_scope]
    assert [r.name for r in scopes] == [
        "encoder",
        "encoder/dense",
        "encoder/norm",
        "out",
        "",
    ]
    for row in scopes:
        assert (row.params, row.bytes) == sizes_below(row.name, (params, state))
    assert rows["encoder/norm"].depth == 2 and rows[""].depth == 0
    assert table.total is table.rows[-1]


def test_variable_rows_give_shape_dtype_size_and_bytes_of_the_real_values():
    table = js.summary(F, 0, X)
    real = {**js.flatten(F.init(0, X)[0]), **js.flatten(F.init(0, X)[1])}
    variables = [r for r in table.rows if not r.is_scope]
    assert {r.name for r in variables} == set(real)
    for row in variables:
        value = real[row.name]
        assert row.shape == value.shape and row.dtype == str(value.dtype)
        assert (row.params, row.bytes) == (value.size, value.size * value.dtype.itemsize)
    assert rows_of(table)["encoder/norm/scale"].bytes == 8  # bfloat16: 2 bytes each


def test_rows_follow_creation_order_with_each_scope_before_its_contents():
    names = [r.name for r in js.summary(F, 0, X).rows]
    assert names == [
        "encoder",
        "encoder/dense",
        "encoder/dense/kernel",
        "encoder/dense/bias",
        "encoder/norm",
        "encoder/norm/scale",
        "encoder/norm/count",
        "step",
        "out",
        "out/kernel",
        "out/bias",
        "",
    ]


def test_trainable_is_mixed_for_a_scope_holding_params_and_state():
    rows = rows_of(js.summary(F, 0, X))
    assert rows["encoder/dense"].trainable is True
    assert rows["encoder/norm/count"].trainable is False
    assert rows["encoder/norm"].trainable is None
    assert rows["encoder/norm"].cells()[-1] == "mixed"


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_depth_collapses_deeper_rows_into_their_scope_totals(depth):
    full, cut = js.summary(F, 0, X), js.summary(F, 0, X, depth=depth)
    assert [r for r in full.rows if r.depth <= depth] == list(cut.rows)
    assert cut.total == full.total
    top = [r for r in cut.rows if r.depth == 1]
    if depth >= 1:  # the top-level rows still add up to the total
        assert sum(r.params for r in top) == cut.total.params


def test_a_negative_depth_is_a_value_error():
    with pytest.raises(ValueError, match="depth"):
        js.summary(F, 0, X, depth=-1)


def test_sharding_column_shows_the_partition_spec():
    def sharded():
        js.get_variable("w", [8, 2], sharding=P("data", None))
        js.get_variable("b", [2])

    rows = rows_of(js.summary(js.transform(sharded), 0))
    assert rows["w"].sharding == P("data", None)
    assert rows["w"].cells()[5] == "P('data', None)"
    assert rows["b"].cells()[5] == "-"


def test_layer_stack_rows_show_the_stacked_shape():
    def stacked(x):
        return js.layer_stack(5)(lambda h: js.nn.dense(h, 3, name="d"))(x)

    rows = rows_of(js.summary(js.transform(stacked), 0, X))
    assert rows["d/kernel"].shape == (5, 3, 3) and rows["d"].params == 5 * 12


def test_a_model_larger_than_memory_is_summarized_without_allocating_it():
    def huge():
        with js.variable_scope("embedding"):
            js.get_variable("table", [1_000_000, 100_000])  # 400 GB of float32

    table = js.summary(js.transform(huge), 0)
    assert table.total.bytes == 4 * 10**11
    assert "400.0 GB" in str(table)


def test_printed_outside_a_terminal_it_is_the_plain_table():
    text = str(js.summary(F, 0, X))
    lines = text.splitlines()
    assert lines[0].split() == [
        "name",
        "shape",
        "dtype",
        "params",
        "bytes",
        "sharding",
        "trainable",
    ]
    assert lines[-1].split()[0] == "total"
    assert not any(char in text for char in "┃│━")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_printed_to_a_terminal_rich_draws_it(monkeypatch):
    table = js.summary(F, 0, X)
    monkeypatch.setattr(sys, "stdout", Terminal())
    text = str(table)
    assert "┃" in text and "encoder/norm/scale" in text and "bfloat16" in text
    assert text == table.render(rich=None)


def test_rich_consoles_render_the_summary_object():
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=150).print(js.summary(F, 0, X))
    text = out.getvalue()
    assert "│ total" in text and "encoder/dense/kernel" in text
    assert text.rstrip("\n") == js.summary(F, 0, X).render(rich=True, width=150)
