"""Mixed precision: float32 storage, bfloat16 or float16 compute, loss scaling.

Mixed precision keeps the variables (and the optimizer's arithmetic) in
float32 and runs the model's matrix products in a 16-bit dtype. In jaxscope
the cast is a custom getter: the variable is stored in float32, and the model
is handed a cast copy. The cast runs inside the traced function, so
``jax.grad`` differentiates through it and the gradients arrive in float32,
for float32 params that the optimizer updates as usual.

Two getters, for the two ways models say which dtype they compute in:

- :class:`Policy` (``param_dtype`` / ``compute_dtype`` / ``output_dtype``, the
  three dtypes of ``jmp``'s policies, which Haiku uses): ``policy.getter``
  stores every floating trainable variable in ``param_dtype`` and hands the
  model ``compute_dtype``; ``policy.cast_to_compute`` and
  ``policy.cast_to_output`` cast the model's inputs and outputs.
- :func:`float32_variable_storage_getter`, TF1's pattern (NVIDIA's guide of
  the same name): the model asks for float16 variables (a scope with
  ``dtype=jnp.float16``), the getter stores float32 and hands back float16.

The ``js.nn`` layers compute in the dtype of the params they are handed
(their inputs are cast to it), keeping layer-norm statistics and softmaxes in
float32, so a getter alone decides the compute dtype.

float16's range ends at 65504 and its smallest normal number is about 6e-5:
gradients underflow to zero unless the loss is scaled up before
differentiating and the gradients scaled back down (bfloat16 has float32's
range and needs none). :class:`StaticLossScale` and
:class:`DynamicLossScale` do that, following ``jmp``: ``scale`` the loss,
``unscale`` the gradients, :func:`all_finite` to test them, ``adjust`` the
scale, and :func:`select_tree` to skip the update of a step whose gradients
overflowed, leaving params and optimizer state bit-identical.

>>> policy = js.precision.Policy(compute_dtype=jnp.bfloat16, output_dtype=jnp.float32)
>>> def model(x):
...     with js.variable_scope("mlp", custom_getter=policy.getter):
...         h = js.nn.dense(policy.cast_to_compute(x), 8, jax.nn.relu)
...         return policy.cast_to_output(js.nn.dense(h, 2))
>>> f = js.transform(model)
>>> x = jnp.ones((4, 3))
>>> params = f.init(0, x)
>>> {str(v.dtype) for v in jax.tree.leaves(params)}
{'float32'}
>>> f.apply(params, x).dtype
dtype('float32')
>>> grads = jax.grad(lambda p: f.apply(p, x).sum())(params)
>>> {str(g.dtype) for g in jax.tree.leaves(grads)}
{'float32'}
"""

from jaxscope._src.precision import (
    DynamicLossScale,
    Policy,
    StaticLossScale,
    all_finite,
    float32_variable_storage_getter,
    select_tree,
)

__all__ = [
    "Policy",
    "float32_variable_storage_getter",
    "StaticLossScale",
    "DynamicLossScale",
    "all_finite",
    "select_tree",
]
