"""``dense``: TF1's ``tf.layers.dense`` as a function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jaxscope._src import initializers
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable


def dense(
    x: jax.Array,
    units: int,
    activation: Callable[[jax.Array], jax.Array] | None = None,
    *,
    use_bias: bool = True,
    kernel_initializer: Any = None,
    bias_initializer: Any = initializers.zeros,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """A fully connected layer on the last axis: ``activation(x @ kernel + bias)``.

    Variables (TF1 ``tf.layers.dense``'s names): ``<name>/kernel`` of shape
    ``[x.shape[-1], units]`` and ``<name>/bias`` of shape ``[units]``.

    Args:
        x: inputs ``[..., in_features]``.
        units: the number of outputs.
        activation: applied to the result when given.
        use_bias: whether to add ``bias``.
        kernel_initializer: defaults to the scope's initializer, else
            Glorot-uniform (as TF1's ``get_variable``).
        bias_initializer: zeros by default (as TF1).
        name: the variable scope; ``None`` gives TF1's uniquified
            ``dense``, ``dense_1``, … (or ``dense`` itself with ``reuse``).
        reuse: ``True`` / ``js.AUTO_REUSE`` to share the variables of an
            earlier call with the same name; ``None`` inherits the scope's.

    Returns:
        ``[..., units]``, in the kernel's dtype: ``x`` is cast to it, so a
        custom getter handing out bfloat16 copies (``js.precision``) makes
        the layer compute in bfloat16.

    >>> def model(x):
    ...     h = js.nn.dense(x, 8, jax.nn.relu)
    ...     return js.nn.dense(h, 2)
    >>> params = js.transform(model).init(0, jnp.ones((4, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'dense': {'bias': (8,), 'kernel': (3, 8)}, 'dense_1': {'bias': (2,), 'kernel': (8, 2)}}
    """
    with layer_scope(name, "dense", reuse):
        kernel = get_variable("kernel", [x.shape[-1], units], initializer=kernel_initializer)
        y = x.astype(kernel.dtype) @ kernel  # computes in the params' dtype
        if use_bias:
            y = y + get_variable("bias", [units], initializer=bias_initializer)
    return y if activation is None else activation(y)
