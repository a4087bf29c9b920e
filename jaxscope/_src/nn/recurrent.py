"""Recurrent cells with TF1's variable names and gate layouts.

A cell is a function of one time step, ``cell(x, state) -> (output,
new_state)``. Run it over time with ``js.scan``: the body obtains the cell's
variables once and every iteration shares them. To call a cell several times
in a Python loop instead, give it a ``name`` and ``reuse=True`` from the
second call on (or ``reuse=js.AUTO_REUSE``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxscope._src import initializers
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable


class LSTMState(NamedTuple):
    """An LSTM's state, ``(c, h)`` in TF1's ``LSTMStateTuple`` order."""

    c: jax.Array
    h: jax.Array

    @classmethod
    def zeros(
        cls, batch_shape: int | Sequence[int], num_units: int, dtype: Any = jnp.float32
    ) -> LSTMState:
        """The zero state (TF1's ``cell.zero_state(batch_size, dtype)``)."""
        batch = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
        zero = jnp.zeros((*batch, num_units), dtype)
        return cls(zero, zero)


def lstm_cell(
    x: jax.Array,
    state: LSTMState,
    *,
    forget_bias: float = 1.0,
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
    kernel_initializer: Any = None,
    name: str | None = None,
    reuse: Any = None,
) -> tuple[jax.Array, LSTMState]:
    """One step of an LSTM, as TF1's ``LSTMCell`` / ``BasicLSTMCell`` compute it.

    With ``z = concat([x, h]) @ kernel + bias`` split into four equal parts
    in the order **i, j, f, o** (input gate, candidate, forget gate, output
    gate: TF1's layout, so TF1 weights load unchanged)::

        c' = sigmoid(f + forget_bias) * c + sigmoid(i) * activation(j)
        h' = activation(c') * sigmoid(o)

    Variables (TF1's names): ``<name>/kernel`` of shape
    ``[in + num_units, 4 * num_units]`` (Glorot-uniform, or the scope's
    initializer) and ``<name>/bias`` of shape ``[4 * num_units]`` (zeros).
    ``num_units`` is the size of ``state.h``.

    Args:
        x: inputs ``[..., in]``.
        state: the previous :class:`LSTMState` ``(c, h)``, each ``[..., num_units]``.
        forget_bias: added to the forget gate (1.0 as in TF1).
        activation: the cell and output activation.
        kernel_initializer: overrides the kernel's initializer.
        name: the scope; ``None`` gives a uniquified ``lstm_cell``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``(h', LSTMState(c', h'))``.

    >>> def encoder(xs):  # xs: [time, batch, features]
    ...     def step(state, x):
    ...         h, state = js.nn.lstm_cell(x, state)
    ...         return state, h
    ...     return js.scan(step, js.nn.LSTMState.zeros(2, 8), xs)[1]
    >>> f = js.transform(encoder)
    >>> params = f.init(0, jnp.ones((5, 2, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'lstm_cell': {'bias': (32,), 'kernel': (11, 32)}}
    >>> jax.jit(f.apply)(params, jnp.ones((5, 2, 3))).shape
    (5, 2, 8)
    """
    c, h = state
    units = h.shape[-1]
    with layer_scope(name, "lstm_cell", reuse):
        kernel = get_variable(
            "kernel", [x.shape[-1] + units, 4 * units], initializer=kernel_initializer
        )
        bias = get_variable("bias", [4 * units], initializer=initializers.zeros)
    # The product runs in the params' dtype; the state keeps its own.
    z = jnp.concatenate([x, h], axis=-1).astype(kernel.dtype) @ kernel + bias
    i, j, f, o = jnp.split(z, 4, axis=-1)
    new_c = jax.nn.sigmoid(f + forget_bias) * c + jax.nn.sigmoid(i) * activation(j)
    new_h = activation(new_c) * jax.nn.sigmoid(o)
    return new_h, LSTMState(new_c, new_h)


def gru_cell(
    x: jax.Array,
    state: jax.Array,
    *,
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
    kernel_initializer: Any = None,
    name: str | None = None,
    reuse: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """One step of a GRU, as TF1's ``GRUCell`` computes it::

        r, u = split(sigmoid(concat([x, h]) @ gates/kernel + gates/bias), 2)
        c    = activation(concat([x, r * h]) @ candidate/kernel + candidate/bias)
        h'   = u * h + (1 - u) * c

    Variables (TF1's names): ``<name>/gates/kernel`` ``[in + num_units,
    2 * num_units]``, ``<name>/gates/bias`` (ones, as in TF1, so the cell
    starts by remembering), ``<name>/candidate/kernel`` ``[in + num_units,
    num_units]`` and ``<name>/candidate/bias`` (zeros). ``num_units`` is the
    size of ``state``.

    Args:
        x: inputs ``[..., in]``.
        state: the previous ``h``, ``[..., num_units]``.
        activation: the candidate's activation.
        kernel_initializer: overrides both kernels' initializer.
        name: the scope; ``None`` gives a uniquified ``gru_cell``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        ``(h', h')``: the output and the new state, as in TF1.

    >>> def model(x, h):
    ...     return js.nn.gru_cell(x, h)[0]
    >>> params = js.transform(model).init(0, jnp.ones((2, 3)), jnp.zeros((2, 4)))
    >>> js.flatten(jax.tree.map(jnp.shape, params))
    {'gru_cell/candidate/bias': (4,), 'gru_cell/candidate/kernel': (7, 4), 'gru_cell/gates/bias': (8,), 'gru_cell/gates/kernel': (7, 8)}
    """
    units = state.shape[-1]
    fan_in = x.shape[-1] + units
    with layer_scope(name, "gru_cell", reuse):
        gates_kernel = get_variable(
            "gates/kernel", [fan_in, 2 * units], initializer=kernel_initializer
        )
        gates_bias = get_variable("gates/bias", [2 * units], initializer=initializers.ones)
        candidate_kernel = get_variable(
            "candidate/kernel", [fan_in, units], initializer=kernel_initializer
        )
        candidate_bias = get_variable("candidate/bias", [units], initializer=initializers.zeros)
    dtype = gates_kernel.dtype  # the products run in the params' dtype
    gates = jnp.concatenate([x, state], axis=-1).astype(dtype) @ gates_kernel + gates_bias
    r, u = jnp.split(jax.nn.sigmoid(gates), 2, axis=-1)
    candidate = jnp.concatenate([x, r * state], axis=-1).astype(dtype) @ candidate_kernel
    candidate = candidate + candidate_bias
    new_h = u * state + (1 - u) * activation(candidate)
    return new_h, new_h
