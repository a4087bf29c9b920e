"""Random keys: per-variable init keys and ``next_rng_key``.

A variable's init key depends on the call's ``rng`` and the variable's full
name alone, through a stable hash (BLAKE2b, never Python's salted ``hash``),
so adding, removing or reordering other variables never changes its initial
value. ``next_rng_key`` keys depend on the rng, the current scope's name and
how many keys that scope has drawn in this call.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscope._src import context, errors

_VARIABLES = 0
_STREAM = 1


def as_key(rng: Any) -> jax.Array | None:
    """A typed PRNG key from a typed key, a raw uint32 key or an int seed."""
    if rng is None:
        return None
    if isinstance(rng, int):
        return jax.random.key(rng)
    dtype = getattr(rng, "dtype", None)
    ndim = getattr(rng, "ndim", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if ndim == 0:
            return rng
    elif dtype is not None and jnp.issubdtype(dtype, jnp.integer) and ndim == 0:
        return jax.random.key(rng)  # a traced or array int seed
    elif dtype == jnp.uint32 and ndim == 1:
        return jax.random.wrap_key_data(rng)
    raise errors.ArgumentTypeError(
        argument="rng",
        problem="must be a JAX PRNG key (jax.random.key(0)), a raw uint32 key "
        f"(jax.random.PRNGKey(0)) or an int seed; got {type(rng).__name__}"
        f"{'' if dtype is None else f' of dtype {dtype} and shape {rng.shape}'}",
        fix="pass one key (not a batch of keys from jax.random.split: vmap over them instead)",
    )


@lru_cache(maxsize=65536)
def name_hash(name: str) -> tuple[int, int]:
    """Two 32-bit words of BLAKE2b(name): stable across processes."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


@jax.jit
def fold_words(key: jax.Array, hi: np.uint32, lo: np.uint32) -> jax.Array:
    """``key`` folded with two hash words (one compiled call instead of two
    dispatches when init runs eagerly)."""
    return jax.random.fold_in(jax.random.fold_in(key, hi), lo)


def fold_name(key: jax.Array, name: str) -> jax.Array:
    """``key`` folded with the stable hash of ``name``."""
    hi, lo = name_hash(name)
    return fold_words(key, np.uint32(hi), np.uint32(lo))


def variables_key(frame: context.Frame, full_name: str) -> jax.Array:
    """The key every variable's init key is folded from in this call
    (a ``MissingRNGError`` naming variable ``full_name`` without an rng)."""
    if frame.variable_key is None:
        if frame.rng is None:
            raise errors.MissingRNGError(path=full_name, fix="f.init(jax.random.key(0), ...)")
        frame.variable_key = jax.random.fold_in(frame.rng, _VARIABLES)
    return frame.variable_key


def variable_key(frame: context.Frame, full_name: str) -> jax.Array:
    """The init key of variable ``full_name`` in this call."""
    return fold_name(variables_key(frame, full_name), full_name)


_fold_many = jax.vmap(fold_words, in_axes=(None, 0, 0))


def variable_keys(frame: context.Frame, full_names: list[str]) -> jax.Array:
    """The init keys of variables ``full_names``, stacked: one batched fold
    (as many operations whatever the number of names), each key equal to
    ``variable_key``'s."""
    words = np.array([name_hash(name) for name in full_names], np.uint32).reshape(-1, 2)
    return _fold_many(variables_key(frame, full_names[0]), words[:, 0], words[:, 1])


def ensure_keys(frame: context.Frame) -> None:
    """Derives the call's base keys now, in the current trace, so that a
    lifted body that needs them does not cache a value of its inner trace."""
    if frame.rng is not None:
        if frame.variable_key is None:
            frame.variable_key = jax.random.fold_in(frame.rng, _VARIABLES)
        if frame.body.stream_key is None:
            frame.body.stream_key = jax.random.fold_in(frame.rng, _STREAM)


def draw_key(frame: context.Frame) -> jax.Array:
    """The next key of the current scope's stream (see ``next_rng_key``)."""
    scope_name = frame.current_scope.name
    body = frame.body
    stream_key = body.stream_key
    if stream_key is None:
        stream_key = jax.random.fold_in(frame.rng, _STREAM)
        if frame.in_outer_trace():  # never cache a value of a raw transform's trace
            body.stream_key = stream_key
    count = body.rng_counts.get(scope_name, 0)
    body.rng_counts[scope_name] = count + 1
    return jax.random.fold_in(fold_name(stream_key, scope_name), count)


def next_rng_key() -> jax.Array:
    """A fresh PRNG key, derived from the ``rng`` given to ``init``/``apply``.

    Keys are deterministic: the n-th key drawn under scope ``s`` in a call is
    the same for the same ``rng``, whatever other scopes draw.

    >>> def model(x):
    ...     keep = jax.random.bernoulli(js.next_rng_key(), 0.9, x.shape)
    ...     return jnp.where(keep, x / 0.9, 0.0)
    >>> js.transform(model).apply({}, jnp.ones(3), rng=jax.random.key(1)).shape
    (3,)

    Raises:
        MissingRNGError: if the call was given no ``rng``.
    """
    frame = context.current("js.next_rng_key")
    if frame.rng is None:
        raise errors.MissingRNGError(
            needed_by=f"js.next_rng_key() in scope '{frame.current_scope.name}'"
        )
    return draw_key(frame)
