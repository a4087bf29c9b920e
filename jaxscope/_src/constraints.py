"""Variable constraints: recorded at ``get_variable``, applied after updates.

A constraint ``constraint(value) -> value`` (e.g. a max-norm projection) is
metadata: it does not change what ``get_variable`` returns. Collect the
constraints of a model with :func:`get_constraints` and project params after
each optimizer step with :func:`apply_constraints`, or chain
:func:`constraint_projection` last in an optax optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax

from jaxscope._src import errors, trees
from jaxscope._src import transform as transform_lib

if TYPE_CHECKING:
    import optax

Constraints = dict  # nested, like params, with callables at constrained paths


def get_constraints(
    f: transform_lib.Transformed | transform_lib.TransformedWithState,
    rng: Any,
    *args,
    **kwargs,
) -> Constraints:
    """The nested tree ``{path: constraint}`` of ``f``'s constrained params.

    Computed with ``jax.eval_shape`` of ``f.init`` (no parameter memory).

    >>> def model():
    ...     return js.get_variable("w", [2], constraint=lambda v: jnp.clip(v, -1, 1))
    >>> f = js.transform(model)
    >>> list(js.get_constraints(f, 0))
    ['w']
    """
    flat = {
        name: record.constraint
        for name, record in transform_lib.variable_records(f, rng, *args, **kwargs).items()
        if record.constraint is not None and record.trainable
    }
    return trees.unflatten(flat)


def apply_constraints(params: Mapping, constraints: Mapping) -> dict:
    """A copy of ``params`` with each constrained variable projected.

    >>> params = {"w": jnp.array([3.0, -0.5])}
    >>> js.apply_constraints(params, {"w": lambda v: jnp.clip(v, -1, 1)})["w"]
    Array([ 1. , -0.5], dtype=float32)
    """
    projected = {}
    for name, fn in trees.flatten(constraints).items():
        value = trees.lookup(params, name, trees.MISSING)
        if value is trees.MISSING:
            raise errors.VariableMissingError(
                path=name,
                problem="has a constraint given to js.apply_constraints, but the params lack it",
                fix="pass the constraints of the same model (js.get_constraints(f, rng, "
                "*args)), or select the ones for these params (js.select(constraints, ...))",
            )
        projected[name] = fn(value)
    return trees.replace_paths(params, projected)


def constraint_projection(constraints: Mapping) -> optax.GradientTransformation:
    """An optax transformation that makes ``apply_updates`` land on the
    constrained set: chain it last.

    >>> opt = optax.chain(optax.adam(1e-3), js.constraint_projection(constraints))
    ... # doctest: +SKIP

    Its ``update`` needs ``params``.
    """
    import optax  # only here: `import jaxscope` does not load optax

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise errors.ArgumentError(
                function="js.constraint_projection",
                argument="params",
                problem="is required: the constraints project the updated params",
                fix="call opt.update(grads, opt_state, params)",
            )
        new_params = apply_constraints(optax.apply_updates(params, updates), constraints)
        return jax.tree.map(lambda new, old: new - old, new_params, params), state

    return optax.GradientTransformation(init_fn, update_fn)
