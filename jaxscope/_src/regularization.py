"""Regularization losses: ``regularizer(value)`` of each variable obtained in
a call, collected when asked for, optionally under one scope path."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxscope._src import context
from jaxscope._src.scopes import VariableScope


def _scope_prefix(scope: str | VariableScope | None) -> str | None:
    if scope is None:
        return None
    name = scope.name if isinstance(scope, VariableScope) else scope
    return name.strip("/")


def _under(name: str, prefix: str | None) -> bool:
    return not prefix or name == prefix or name.startswith(prefix + "/")


def get_regularization_losses(scope: str | VariableScope | None = None) -> list[jax.Array]:
    """The regularization losses of this call, in creation order.

    Each variable contributes ``regularizer(value)`` once per call, when it is
    first obtained. ``scope`` keeps the variables under that scope path,
    compared by whole components (``"enc"`` does not match ``"encoder/w"``).
    """
    frame = context.current("js.get_regularization_losses")
    prefix = _scope_prefix(scope)
    losses = []
    for name, regularizer in frame.regularizers:
        if _under(name, prefix):
            loss = regularizer(frame.records[name].initial_value)
            if loss is not None:
                losses.append(loss)
    return losses


def get_regularization_loss(scope: str | VariableScope | None = None) -> jax.Array:
    """The sum of :func:`get_regularization_losses` (0.0 when there are none).

    >>> def model():
    ...     w = js.get_variable("w", [2], initializer=js.initializers.ones,
    ...                         regularizer=lambda v: 0.5 * jnp.sum(v**2))
    ...     return js.get_regularization_loss()
    >>> float(js.transform(model).apply({"w": jnp.ones(2)}))
    1.0
    """
    losses = get_regularization_losses(scope)
    if not losses:
        return jnp.zeros((), jnp.float32)
    return sum(losses[1:], losses[0])
