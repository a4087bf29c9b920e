"""``sequence_loss``: TF1's ``tf.contrib.seq2seq.sequence_loss``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxscope._src import errors


def _div_no_nan(num: jax.Array, den: jax.Array) -> jax.Array:
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), num / safe)


def _check_reductions(
    average_across_timesteps: bool,
    average_across_batch: bool,
    sum_over_timesteps: bool,
    sum_over_batch: bool,
) -> None:
    """At most one reduction per axis, as TF1's ``sequence_loss`` checks."""
    if average_across_timesteps and sum_over_timesteps:
        raise errors.ArgumentError(
            function="js.nn.sequence_loss",
            argument="average_across_timesteps and sum_over_timesteps",
            problem="cannot both be True",
            fix="set at most one of them",
        )
    if average_across_batch and sum_over_batch:
        raise errors.ArgumentError(
            function="js.nn.sequence_loss",
            argument="average_across_batch and sum_over_batch",
            problem="cannot both be True",
            fix="set at most one of them",
        )


def sequence_loss(
    logits: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    average_across_timesteps: bool = True,
    average_across_batch: bool = True,
    sum_over_timesteps: bool = False,
    sum_over_batch: bool = False,
    softmax_loss_function: Callable[..., jax.Array] | None = None,
) -> jax.Array:
    """The weighted cross-entropy of a batch of sequences, reduced as TF1's
    ``tf.contrib.seq2seq.sequence_loss`` reduces it.

    With ``w = weights`` and ``ce[b, t]`` the softmax cross-entropy of
    ``logits[b, t]`` against ``targets[b, t]``, times ``w[b, t]``:

    - both averages (the default): ``sum(ce) / sum(w)``, a scalar;
    - ``average_across_timesteps`` only: ``sum_t(ce) / sum_t(w)``, ``[batch]``;
    - ``average_across_batch`` only: ``sum_b(ce) / sum_b(w)``, ``[time]``;
    - both sums: ``sum(ce) / count_nonzero(w)``, a scalar;
    - ``sum_over_timesteps`` or ``sum_over_batch`` only: the sum over that
      axis divided by its count of non-zero weights;
    - none: ``ce``, ``[batch, time]``.

    A division by zero gives 0 (TF1's ``div_no_nan``). As in TF1, an
    average and a sum over the same axis together are an error, and a sum
    given beside an average over the other axis is ignored.

    Args:
        logits: ``[batch, time, num_classes]``.
        targets: ``[batch, time]`` integer class ids.
        weights: ``[batch, time]``, e.g. 1.0 for real tokens and 0.0 for
            padding.
        average_across_timesteps, average_across_batch, sum_over_timesteps,
            sum_over_batch: the reduction, as above.
        softmax_loss_function: ``f(labels=, logits=)`` replacing the softmax
            cross-entropy (TF1's argument), called on ``[batch * time]``
            labels and ``[batch * time, num_classes]`` logits.

    >>> logits = jnp.zeros((2, 3, 4))  # uniform: each step costs log(4)
    >>> weights = jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    >>> targets = jnp.zeros((2, 3), jnp.int32)
    >>> round(float(js.nn.sequence_loss(logits, targets, weights)), 4)
    1.3863
    >>> js.nn.sequence_loss(logits, targets, weights, average_across_batch=False).shape
    (2,)
    """
    if jnp.ndim(logits) != 3:
        raise errors.ArgumentError(
            function="js.nn.sequence_loss",
            argument="logits",
            problem=f"must be [batch, time, num_classes], got shape {jnp.shape(logits)}",
            fix="pass the decoder's logits for every time step, batch first",
        )
    if jnp.ndim(targets) != 2 or jnp.ndim(weights) != 2:
        raise errors.ArgumentError(
            function="js.nn.sequence_loss",
            argument="targets and weights",
            problem=f"must be [batch, time], got shapes {jnp.shape(targets)} and "
            f"{jnp.shape(weights)}",
            fix="pass one target id and one weight per batch entry and time step",
        )
    _check_reductions(
        average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch
    )
    batch_time = logits.shape[:2]
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1)
    if softmax_loss_function is None:
        import optax  # only here: `import jaxscope` does not load optax

        crossent = optax.softmax_cross_entropy_with_integer_labels(flat_logits, flat_targets)
    else:
        crossent = softmax_loss_function(labels=flat_targets, logits=flat_logits)
    weights = jnp.asarray(weights, crossent.dtype)
    crossent = crossent.reshape(batch_time) * weights
    if average_across_timesteps and average_across_batch:
        return _div_no_nan(jnp.sum(crossent), jnp.sum(weights))
    if sum_over_timesteps and sum_over_batch:
        return _div_no_nan(jnp.sum(crossent), jnp.count_nonzero(weights).astype(crossent.dtype))
    if average_across_timesteps or average_across_batch:
        axis = 0 if average_across_batch else 1
        return _div_no_nan(jnp.sum(crossent, axis), jnp.sum(weights, axis))
    if sum_over_timesteps or sum_over_batch:
        axis = 0 if sum_over_batch else 1
        count = jnp.count_nonzero(weights, axis=axis).astype(crossent.dtype)
        return _div_no_nan(jnp.sum(crossent, axis), count)
    return crossent
