"""Argument checks shared by the layers."""

from __future__ import annotations

from typing import Any

import jax

from jaxscope._src import errors


def static_flag(value: Any, layer: str, arg: str = "is_training") -> bool:
    """``value`` as a Python bool; a traced value is a ``TypeError`` that says
    how to make it static, rather than JAX's concretization error."""
    try:
        return bool(value)
    except jax.errors.ConcretizationTypeError:
        raise errors.ArgumentTypeError(
            function=layer,
            argument=arg,
            problem="must be a Python bool, not a traced value",
            fix=f"pass it as a static argument (jax.jit(f.apply, static_argnames={arg!r})), "
            "or close over it in the model function",
        ) from None
