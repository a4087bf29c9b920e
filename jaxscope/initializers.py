"""TF1's initializers under their TF1 names, built on ``jax.nn.initializers``.

Every initializer follows JAX's convention, ``init(key, shape, dtype) ->
array``. ``zeros`` and ``ones`` are initializers; the others are factories
taking TF1's arguments and returning one:

>>> init = js.initializers.random_uniform(-0.1, 0.1)
>>> init(jax.random.key(0), (2, 3), jnp.float32).shape
(2, 3)

Variance-scaling initializers (``glorot_*``, ``variance_scaling``) compute
fans as TF1 does, so they also work on scalars and vectors (fan = the
vector's length, or 1 for a scalar), where ``jax.nn.initializers`` refuses,
and on zero-size shapes (``[0, 3]``). An initializer asked for a shape or
dtype it cannot fill (a normal distribution of ints, ``orthogonal`` on a
vector) raises ``js.errors.InitializerError``; inside ``get_variable`` the
error names the variable.

The factories return the same initializer for the same arguments, and the
built-in initializers are pure functions of key, shape and dtype: under
``jax.jit(f.init)`` or ``jax.eval_shape(f.init)`` each variable's key
derivation and initializer are staged as one call, traced once per
initializer, shape and dtype (the values are those of the unstaged calls).
``zeros``, ``ones`` and ``constant(...)`` ignore their key, so none is
derived for them (``init`` still needs an ``rng``).

>>> js.initializers.truncated_normal(stddev=0.02) is js.initializers.truncated_normal(stddev=0.02)
True
"""

from jaxscope._src.initializers import (
    Initializer,
    constant,
    default_for,
    glorot_normal,
    glorot_uniform,
    ones,
    orthogonal,
    random_normal,
    random_uniform,
    truncated_normal,
    variance_scaling,
    zeros,
)

__all__ = [
    "Initializer",
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "truncated_normal",
    "random_uniform",
    "glorot_uniform",
    "glorot_normal",
    "variance_scaling",
    "orthogonal",
    "default_for",
]
