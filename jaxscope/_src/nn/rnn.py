"""Running cells over sequences: TF1's ``MultiRNNCell``, ``dynamic_rnn`` and
``bidirectional_dynamic_rnn``.

A cell is a function of one step, ``cell(x, state) -> (output, new_state)``,
such as :func:`~jaxscope.nn.lstm_cell` or :func:`~jaxscope.nn.gru_cell` (use
``functools.partial`` for their options). The helpers run it with
``js.scan``, so its variables are created once and shared by every step,
under TF1's names (``rnn/lstm_cell/kernel``,
``bidirectional_rnn/fw/lstm_cell/kernel``, …).

TF1 built the zero state from the cell (``dtype=tf.float32``); here the
caller passes it, e.g. ``js.nn.LSTMState.zeros(batch, units)``, which is
also how a cell learns its number of units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src import errors
from jaxscope._src.lift import scan
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.scopes import VariableScope, variable_scope

Cell = Callable[[Any, Any], tuple[Any, Any]]


def multi_rnn_cell(cells: Sequence[Cell], *, name: str | None = None) -> Cell:
    """TF1's ``MultiRNNCell``: the cells stacked, each feeding the next.

    Returns a cell whose state is the tuple of the cells' states. Cell ``i``
    runs in the scope ``<name>/cell_<i>``, so a stack of two ``lstm_cell``
    under ``dynamic_rnn`` has TF1's names
    ``rnn/multi_rnn_cell/cell_0/lstm_cell/kernel``, ….

    Args:
        cells: the cells, bottom first.
        name: the scope; ``None`` gives a uniquified ``multi_rnn_cell``
            (each call of the returned cell opens it again: call it in
            ``js.scan``, or give later calls reuse through an enclosing
            ``js.variable_scope(..., reuse=True)``).

    >>> cell = js.nn.multi_rnn_cell([js.nn.lstm_cell, js.nn.lstm_cell])
    >>> def model(xs):  # [batch, time, features]
    ...     zeros = js.nn.LSTMState.zeros(xs.shape[0], 4)
    ...     return js.nn.dynamic_rnn(cell, xs, initial_state=(zeros, zeros))
    >>> params = js.transform(model).init(0, jnp.ones((2, 5, 3)))
    >>> sorted(js.flatten(params))  # doctest: +NORMALIZE_WHITESPACE
    ['rnn/multi_rnn_cell/cell_0/lstm_cell/bias', 'rnn/multi_rnn_cell/cell_0/lstm_cell/kernel',
     'rnn/multi_rnn_cell/cell_1/lstm_cell/bias', 'rnn/multi_rnn_cell/cell_1/lstm_cell/kernel']
    """
    cells = tuple(cells)

    def stacked(x: Any, state: Sequence[Any]) -> tuple[Any, tuple[Any, ...]]:
        if len(state) != len(cells):
            raise errors.ArgumentError(
                function="js.nn.multi_rnn_cell",
                argument="state",
                problem=f"holds {len(state)} cell states for {len(cells)} cells",
                fix="pass one state per cell, as a tuple",
            )
        new_states = []
        with layer_scope(name, "multi_rnn_cell"):
            for i, (cell, cell_state) in enumerate(zip(cells, state, strict=True)):
                with variable_scope(f"cell_{i}"):
                    x, cell_state = cell(x, cell_state)
                new_states.append(cell_state)
        return x, tuple(new_states)

    return stacked


def _time_major(tree: Any) -> Any:
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), tree)


def _length(inputs: Any, where: str) -> int:
    leaves = jax.tree.leaves(inputs)
    if not leaves or any(jnp.ndim(a) < 2 for a in leaves):
        raise errors.ArgumentError(
            function=where,
            argument="inputs",
            problem="must be arrays of rank >= 2 (batch and time)",
            fix="pass arrays of shape [batch, time, ...] ([time, batch, ...] with time_major=True)",
        )
    return leaves[0].shape[0]


def _run(cell: Cell, xs: Any, sequence_length: Any, initial_state: Any, where: str):
    """The cell over time-major ``xs`` in the current scope."""
    if initial_state is None:
        raise errors.ArgumentError(
            function=where,
            argument="initial_state",
            problem="is required (TF1 built it from dtype=; here the cell's state size "
            "comes from it)",
            fix="pass e.g. initial_state=js.nn.LSTMState.zeros(batch, units)",
        )
    if sequence_length is None:

        def step(state, x):
            output, state = cell(x, state)
            return state, output

        return scan(step, initial_state, xs)
    lengths = jnp.asarray(sequence_length)

    def masked_step(state, tx):
        t, x = tx
        output, new_state = cell(x, state)
        live = t < lengths  # [batch]: past its length a sequence keeps its state

        def pick(new, old):
            return jnp.where(live.reshape(-1, *[1] * (jnp.ndim(new) - 1)), new, old)

        new_state = jax.tree.map(pick, new_state, state)
        output = jax.tree.map(lambda o: pick(o, jnp.zeros((), o.dtype)), output)
        return new_state, output

    return scan(masked_step, initial_state, (jnp.arange(_length(xs, where)), xs))


def dynamic_rnn(
    cell: Cell,
    inputs: Any,
    sequence_length: Any = None,
    initial_state: Any = None,
    *,
    time_major: bool = False,
    scope: str | VariableScope | None = None,
) -> tuple[Any, Any]:
    """TF1's ``tf.nn.dynamic_rnn``: ``cell`` over the time axis of ``inputs``,
    run as one ``js.scan`` in the scope ``rnn`` (or ``scope``).

    With ``sequence_length``, each sequence stops at its length, as in TF1:
    its outputs past the length are zeros and its state stays as it was at
    the length, so the final state is each sequence's own last state.

    Args:
        cell: ``cell(x, state) -> (output, new_state)``.
        inputs: ``[batch, time, ...]`` (``[time, batch, ...]`` with
            ``time_major``), or a tree of them.
        sequence_length: ``[batch]`` ints, the length of each sequence.
        initial_state: the state before the first step, batch-major (e.g.
            ``js.nn.LSTMState.zeros(batch, units)``).
        time_major: whether time is the first axis of inputs and outputs.
        scope: the variable scope (a name or a ``js.VariableScope``),
            ``rnn`` by default, as in TF1.

    Returns:
        ``(outputs, final_state)``, ``outputs`` laid out as ``inputs``.

    >>> def encoder(xs, lengths):
    ...     zeros = js.nn.LSTMState.zeros(xs.shape[0], 4)
    ...     return js.nn.dynamic_rnn(js.nn.lstm_cell, xs, lengths, zeros)
    >>> f = js.transform(encoder)
    >>> xs, lengths = jnp.ones((2, 5, 3)), jnp.array([5, 2])
    >>> params = f.init(0, xs, lengths)
    >>> sorted(js.flatten(params))
    ['rnn/lstm_cell/bias', 'rnn/lstm_cell/kernel']
    >>> outputs, state = f.apply(params, xs, lengths)
    >>> outputs.shape, bool((outputs[1, 2:] == 0).all()), bool((state.h[1] == outputs[1, 1]).all())
    ((2, 5, 4), True, True)
    """
    xs = inputs if time_major else _time_major(inputs)
    with variable_scope(scope or "rnn"):
        state, outputs = _run(cell, xs, sequence_length, initial_state, "js.nn.dynamic_rnn")
    return (outputs if time_major else _time_major(outputs)), state


def _reverse(xs: Any, sequence_length: Any) -> Any:
    """TF1's ``reverse_sequence`` over time-major ``xs``: each sequence's first
    ``length`` steps reversed, the padding after them left in place."""
    if sequence_length is None:
        return jax.tree.map(lambda a: jnp.flip(a, 0), xs)
    lengths = jnp.asarray(sequence_length)

    def reverse(a):
        t = jnp.arange(a.shape[0])[:, None]
        index = jnp.where(t < lengths, lengths - 1 - t, t)  # [time, batch]
        return jnp.take_along_axis(a, index.reshape(*index.shape, *[1] * (a.ndim - 2)), axis=0)

    return jax.tree.map(reverse, xs)


def bidirectional_dynamic_rnn(
    cell_fw: Cell,
    cell_bw: Cell,
    inputs: Any,
    sequence_length: Any = None,
    initial_state_fw: Any = None,
    initial_state_bw: Any = None,
    *,
    time_major: bool = False,
    scope: str | VariableScope | None = None,
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """TF1's ``tf.nn.bidirectional_dynamic_rnn``: ``cell_fw`` over the
    sequences and ``cell_bw`` over each sequence reversed within its length.

    Variables (TF1's names): ``bidirectional_rnn/fw/<cell>/...`` and
    ``bidirectional_rnn/bw/<cell>/...`` (``scope`` replaces
    ``bidirectional_rnn``). The backward outputs are put back in forward
    order, so ``outputs_bw[:, t]`` has read the sequence from its end down to
    ``t``; with ``sequence_length``, both directions give zeros past each
    sequence's length and the backward pass starts at the sequence's last
    real step, not at the padding.

    Args: as :func:`dynamic_rnn`, with a cell and an initial state per
    direction.

    Returns:
        ``((outputs_fw, outputs_bw), (final_state_fw, final_state_bw))``.

    >>> def encoder(xs):
    ...     zeros = js.nn.LSTMState.zeros(xs.shape[0], 4)
    ...     (fw, bw), _ = js.nn.bidirectional_dynamic_rnn(
    ...         js.nn.lstm_cell, js.nn.lstm_cell, xs, None, zeros, zeros)
    ...     return jnp.concatenate([fw, bw], -1)
    >>> f = js.transform(encoder)
    >>> params = f.init(0, jnp.ones((2, 5, 3)))
    >>> sorted(js.flatten(params))  # doctest: +NORMALIZE_WHITESPACE
    ['bidirectional_rnn/bw/lstm_cell/bias', 'bidirectional_rnn/bw/lstm_cell/kernel',
     'bidirectional_rnn/fw/lstm_cell/bias', 'bidirectional_rnn/fw/lstm_cell/kernel']
    >>> f.apply(params, jnp.ones((2, 5, 3))).shape
    (2, 5, 8)
    """
    where = "js.nn.bidirectional_dynamic_rnn"
    xs = inputs if time_major else _time_major(inputs)
    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw"):
            state_fw, outputs_fw = _run(cell_fw, xs, sequence_length, initial_state_fw, where)
        with variable_scope("bw"):
            reversed_xs = _reverse(xs, sequence_length)
            state_bw, outputs_bw = _run(
                cell_bw, reversed_xs, sequence_length, initial_state_bw, where
            )
            outputs_bw = _reverse(outputs_bw, sequence_length)
    if not time_major:
        outputs_fw, outputs_bw = _time_major(outputs_fw), _time_major(outputs_bw)
    return (outputs_fw, outputs_bw), (state_fw, state_bw)
