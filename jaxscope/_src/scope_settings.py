"""What a variable scope hands its sub-scopes and ``get_variable``: its
settings, one frozen value, and the ``AUTO_REUSE`` reuse mode."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp


class _ReuseMode(enum.Enum):
    AUTO_REUSE = 1

    def __repr__(self) -> str:
        return "js.AUTO_REUSE"


AUTO_REUSE = _ReuseMode.AUTO_REUSE
"""Reuse mode that creates a variable when missing and reuses it otherwise."""

Reuse = bool | _ReuseMode


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ScopeSettings:
    """A scope's reuse flag and its defaults for ``get_variable``, inherited
    by its sub-scopes.

    Frozen: a scope that changes a setting (an argument of
    ``variable_scope``, ``set_initializer``, ``reuse_variables``) takes a
    copy made with ``dataclasses.replace``, so scopes share one object until
    one of them changes it, and a captured scope never sees the changes made
    to the copies its re-entries work on.
    """

    reuse: Reuse = False
    initializer: Any = None
    regularizer: Callable | None = None
    constraint: Callable | None = None
    custom_getter: Callable | None = None
    partitioner: Callable | None = None
    dtype: Any = jnp.float32
    # Whether a scope set ``dtype``: the root's float32 default is not asked
    # for, so a reuse does not check a stored variable's dtype against it.
    dtype_set: bool = False
    # Whether get_variable may take its plain path in this scope (no custom
    # getter, no partitioner, no concrete initializer): decided once per
    # settings object, not per variable.
    plain: bool = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        plain = self.custom_getter is None and self.partitioner is None
        initializer = self.initializer
        object.__setattr__(self, "plain", plain and (initializer is None or callable(initializer)))


ROOT = ScopeSettings()
"""The root scope's settings: no reuse, no defaults, dtype float32."""
