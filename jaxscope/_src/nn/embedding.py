"""``embedding`` lookups and the tied output layer ``embedding.attend``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable


def embedding(
    ids: jax.Array,
    vocab_size: int,
    embed_dim: int,
    *,
    initializer: Any = None,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """Looks ``ids`` up in an embedding table.

    Variable: ``<name>/embeddings`` of shape ``[vocab_size, embed_dim]``
    (the name Keras and ``tf.keras.layers.Embedding`` use). The table can
    also serve as the output layer: ``embedding.attend(x)`` (see
    :func:`embedding_attend`) computes logits ``x @ embeddings.T``.

    Args:
        ids: integer ids of any shape.
        vocab_size: rows of the table.
        embed_dim: columns of the table.
        initializer: defaults to the scope's initializer, else Glorot-uniform.
        name: the variable scope; ``None`` gives a uniquified ``embedding``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier table.

    Returns:
        ``ids.shape + (embed_dim,)``.

    >>> def model(ids):
    ...     x = js.nn.embedding(ids, 10, 4, name="embedding")
    ...     return js.nn.embedding.attend(x, name="embedding")  # tied output
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.zeros((2, 5), jnp.int32))
    >>> params["embedding"]["embeddings"].shape
    (10, 4)
    >>> f.apply(params, jnp.zeros((2, 5), jnp.int32)).shape
    (2, 5, 10)
    """
    with layer_scope(name, "embedding", reuse):
        table = get_variable("embeddings", [vocab_size, embed_dim], initializer=initializer)
    return jnp.take(table, ids, axis=0)


def embedding_attend(x: jax.Array, *, name: str = "embedding") -> jax.Array:
    """Logits against an embedding table: ``x @ embeddings.T``.

    The tied output layer (input and output embeddings shared): it reuses
    ``<name>/embeddings``, created earlier in the call by
    :func:`embedding` (or present in apply's params), and creates nothing.
    Also available as ``js.nn.embedding.attend``.

    Args:
        x: ``[..., embed_dim]``.
        name: the scope of the :func:`embedding` to reuse.

    Returns:
        ``[..., vocab_size]``, in the table's dtype (``x`` is cast to it).
    """
    with layer_scope(name, "embedding", True):
        table = get_variable("embeddings")
    return x.astype(table.dtype) @ table.T  # computes in the params' dtype


embedding.attend = embedding_attend
