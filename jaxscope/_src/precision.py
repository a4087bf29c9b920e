"""Mixed precision; the public part is documented in :mod:`jaxscope.precision`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxscope._src import errors

__all__ = [
    "Policy",
    "float32_variable_storage_getter",
    "StaticLossScale",
    "DynamicLossScale",
    "all_finite",
    "select_tree",
]

T = TypeVar("T")


def _floating(dtype: Any) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def _cast_floating(tree: T, dtype: np.dtype) -> T:
    """``tree`` with its floating array leaves cast to ``dtype``; integer,
    bool and non-array leaves unchanged."""

    def cast(x: Any) -> Any:
        if isinstance(x, (jax.Array, np.ndarray, np.generic)) and _floating(x.dtype):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


def _asks_for_floating(dtype: Any, initializer: Any) -> bool:
    """Whether ``get_variable(dtype=dtype, initializer=initializer)`` makes a
    floating variable: a floating dtype, or none and then float32 unless a
    concrete initializer value of another kind defines it."""
    if dtype is not None:
        return _floating(dtype)
    if initializer is None or callable(initializer):
        return True
    dtype = getattr(initializer, "dtype", None)
    return _floating(np.asarray(initializer).dtype if dtype is None else dtype)


def _as_dtype(value: Any, field: str) -> np.dtype:
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise errors.ArgumentTypeError(
            function="js.precision.Policy",
            argument=field,
            problem=f"is {value!r}, which is not a dtype",
            fix=f"e.g. {field}=jnp.bfloat16 (or the string 'bfloat16')",
        ) from None
    if not _floating(dtype):
        raise errors.ArgumentError(
            function="js.precision.Policy",
            argument=field,
            problem=f"is {dtype}, not a floating dtype; a policy only changes floating "
            "variables and values",
            fix="use float32, bfloat16 or float16",
        )
    return dtype


@dataclasses.dataclass(frozen=True)
class Policy:
    """The dtypes of params, computation and outputs (``jmp.Policy``'s three).

    ``policy.getter`` is a custom getter (for ``js.variable_scope``) that
    stores each floating trainable variable in ``param_dtype`` and hands the
    model a copy cast to ``compute_dtype``. ``trainable=False`` variables
    (state, such as batch-norm statistics, which ``js.assign`` updates in
    their stored dtype) and integer or bool variables are left as asked.
    The casts below change floating leaves only.

    A reuse asks for ``param_dtype`` explicitly: params stored in another
    dtype (a tree cast to bfloat16 by hand) are a ``DtypeMismatchError``,
    not a silent change of what the optimizer updates.

    Args:
        param_dtype: the stored dtype (float32 by default).
        compute_dtype: the dtype the model computes in (float32 by default).
        output_dtype: the dtype of :meth:`cast_to_output`; defaults to
            ``compute_dtype``, as in ``jmp``. Losses are best computed in
            float32: pass ``output_dtype=jnp.float32``.

    >>> policy = js.precision.Policy(compute_dtype="bfloat16")
    >>> policy.output_dtype
    dtype(bfloat16)
    >>> tree = policy.cast_to_compute({"x": jnp.ones(2), "ids": jnp.arange(2)})
    >>> tree["x"].dtype, tree["ids"].dtype
    (dtype(bfloat16), dtype('int32'))
    """

    param_dtype: Any = jnp.float32
    compute_dtype: Any = jnp.float32
    output_dtype: Any = None

    def __post_init__(self) -> None:
        if self.output_dtype is None:
            object.__setattr__(self, "output_dtype", self.compute_dtype)
        for field in ("param_dtype", "compute_dtype", "output_dtype"):
            object.__setattr__(self, field, _as_dtype(getattr(self, field), field))

    def cast_to_param(self, tree: T) -> T:
        """``tree`` with its floating leaves in ``param_dtype``."""
        return _cast_floating(tree, self.param_dtype)

    def cast_to_compute(self, tree: T) -> T:
        """``tree`` with its floating leaves in ``compute_dtype`` (the model's
        inputs)."""
        return _cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: T) -> T:
        """``tree`` with its floating leaves in ``output_dtype`` (the model's
        outputs)."""
        return _cast_floating(tree, self.output_dtype)

    @functools.cached_property
    def getter(self) -> Callable[..., jax.Array]:
        """The custom getter applying this policy (one function per policy,
        so passing it again costs nothing)."""
        param_dtype, compute_dtype = self.param_dtype, self.compute_dtype

        def policy_getter(getter, name, *args, **kwargs):
            return _store_and_cast(getter, name, args, kwargs, param_dtype, compute_dtype)

        return policy_getter


# TF1's positional order of a getter's arguments after ``name``.
_GETTER_ARGS = (
    "shape",
    "dtype",
    "initializer",
    "regularizer",
    "reuse",
    "trainable",
    "collections",
    "caching_device",
    "partitioner",
    "validate_shape",
    "use_resource",
    "constraint",
    "synchronization",
    "aggregation",
)


def _store_and_cast(
    getter: Callable, name: str, args: tuple, kwargs: dict, store: np.dtype, hand: Any
) -> jax.Array:
    """A floating trainable variable obtained through ``getter`` stored in
    ``store`` and handed out in ``hand`` (``None``: the dtype asked for);
    any other variable as asked."""
    kwargs = {**kwargs, **dict(zip(_GETTER_ARGS[: len(args)], args, strict=True))}
    asked = kwargs.get("dtype")
    if not kwargs.get("trainable", True) or not _asks_for_floating(
        asked, kwargs.get("initializer")
    ):
        return getter(name, **kwargs)
    value = getter(name, **{**kwargs, "dtype": store})
    hand = asked if hand is None else hand
    return value if hand is None or value.dtype == jnp.dtype(hand) else value.astype(hand)


def float32_variable_storage_getter(
    getter: Callable[..., jax.Array], name: str, *args: Any, **kwargs: Any
) -> jax.Array:
    """TF1's mixed-precision custom getter: trainable variables are stored in
    float32 and handed to the model in the dtype it asked for.

    The getter of NVIDIA's TF1 mixed-precision guide, for models that ask
    for float16 (or bfloat16) variables, usually through a scope's
    ``dtype``. ``trainable=False`` variables are stored as asked. Unlike the
    original, an integer or bool variable is stored as asked too (float32
    would round integers above 2**24). The NVIDIA code itself also works
    unchanged with ``tf.float32`` and ``tf.cast`` read as ``jnp.float32`` and
    ``lambda x, dtype: x.astype(dtype)``.

    Where TF1's ``tf.layers`` took their variables' dtype from their input,
    ``js.nn`` layers take the scope's: put ``dtype=jnp.float16`` on the
    getter's scope.

    >>> def model(x):
    ...     with js.variable_scope("fp32_vars", dtype=jnp.float16,
    ...                            custom_getter=js.precision.float32_variable_storage_getter):
    ...         return js.nn.dense(x.astype(jnp.float16), 4)
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((2, 3)))
    >>> params["fp32_vars"]["dense"]["kernel"].dtype, f.apply(params, jnp.ones((2, 3))).dtype
    (dtype('float32'), dtype('float16'))
    """
    return _store_and_cast(getter, name, args, kwargs, np.dtype(np.float32), None)


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool array: whether every element of every leaf is finite.

    >>> bool(js.precision.all_finite({"w": jnp.ones(2), "b": jnp.array([jnp.inf])}))
    False
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]).all()


def select_tree(pred: jax.Array, on_true: T, on_false: T) -> T:
    """``on_true`` where the scalar bool ``pred`` holds, else ``on_false``,
    leaf by leaf (``jax.lax.select``: the chosen tree's bits, exactly).

    The two trees must have one structure, shapes and dtypes: typically the
    updated and the previous ``(params, opt_state)`` of a train step, with
    ``pred`` from :func:`all_finite`.

    >>> js.precision.select_tree(jnp.array(False), {"w": jnp.ones(2)}, {"w": jnp.zeros(2)})
    {'w': Array([0., 0.], dtype=float32)}
    """
    pred = jnp.asarray(pred)
    if pred.shape != () or pred.dtype != jnp.bool_:
        raise errors.ArgumentError(
            function="js.precision.select_tree",
            argument="pred",
            problem=f"must be a scalar bool, got shape {pred.shape} and dtype {pred.dtype}",
            fix="pass js.precision.all_finite(grads)",
        )
    return jax.tree.map(functools.partial(jax.lax.select, pred), on_true, on_false)


class _Scaling:
    """``scale`` and ``unscale`` by a loss scale's ``loss_scale``."""

    loss_scale: Any

    def scale(self, tree: T) -> T:
        """``tree`` times the loss scale, in float32 at least: a float16 loss
        is promoted, so that the scaled loss cannot overflow."""
        factor = jnp.asarray(self.loss_scale, jnp.float32)
        return jax.tree.map(lambda x: x * factor, tree)

    def unscale(self, tree: T) -> T:
        """``tree`` divided by the loss scale, each leaf in its own dtype."""
        inverse = 1.0 / jnp.asarray(self.loss_scale, jnp.float32)
        return jax.tree.map(lambda x: (x * inverse).astype(x.dtype), tree)


@functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["loss_scale"])
@dataclasses.dataclass(frozen=True)
class StaticLossScale(_Scaling):
    """Scales the loss by a fixed ``loss_scale`` and the gradients back.

    >>> loss_scale = js.precision.StaticLossScale(2.0**10)
    >>> float(loss_scale.scale(jnp.float32(0.5)))
    512.0
    >>> loss_scale.unscale({"w": jnp.full(2, 1024.0)})
    {'w': Array([1., 1.], dtype=float32)}
    """

    loss_scale: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_scale", float(self.loss_scale))

    def adjust(self, grads_finite: jax.Array) -> StaticLossScale:
        """The same scale: a static scale never changes."""
        del grads_finite
        return self


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["loss_scale", "counter"],
    meta_fields=["period", "factor", "min_loss_scale"],
)
@dataclasses.dataclass(frozen=True)
class DynamicLossScale(_Scaling):
    """A loss scale that grows while the gradients stay finite and shrinks
    when they overflow (``jmp.DynamicLossScale``'s rule, as TF's and
    PyTorch's dynamic loss scaling):

    - a step with finite gradients counts; after ``period`` of them in a row
      the scale is multiplied by ``factor`` (unless that overflows) and the
      count restarts;
    - a step with non-finite gradients divides the scale by ``factor`` (not
      below ``min_loss_scale``) and restarts the count; the caller skips
      its update (:func:`select_tree`).

    A pytree: it goes through ``jax.jit`` and into checkpoints with the
    train state; ``period``, ``factor`` and ``min_loss_scale`` are static.

    Args:
        loss_scale: the initial scale (``2**15`` is usual for float16).
        counter: finite steps since the last change (0 to start).
        period: finite steps between increases.
        factor: the multiplier of an increase and divisor of a decrease.
        min_loss_scale: the smallest scale a decrease goes to.

    >>> scale = js.precision.DynamicLossScale(2.0**15, period=2)
    >>> scale = scale.adjust(jnp.array(False))  # overflow: halved
    >>> float(scale.loss_scale), int(scale.counter)
    (16384.0, 0)
    >>> scale = scale.adjust(jnp.array(True)).adjust(jnp.array(True))  # a period: doubled
    >>> float(scale.loss_scale), int(scale.counter)
    (32768.0, 0)
    """

    loss_scale: Any
    counter: Any = 0
    period: int = 2000
    factor: int = 2
    min_loss_scale: float = 1.0

    def __post_init__(self) -> None:
        # Python numbers become arrays; tracers and the placeholders JAX
        # rebuilds pytrees with are left as they are.
        if isinstance(self.loss_scale, (int, float)):
            object.__setattr__(self, "loss_scale", jnp.asarray(self.loss_scale, jnp.float32))
        if isinstance(self.counter, int):
            object.__setattr__(self, "counter", jnp.asarray(self.counter, jnp.int32))
        if not isinstance(self.period, int) or self.period < 1:
            raise errors.ArgumentError(
                function="js.precision.DynamicLossScale",
                argument="period",
                problem=f"must be a positive int, got {self.period!r}",
                fix="e.g. period=2000 (steps between increases)",
            )
        if self.factor <= 1:
            raise errors.ArgumentError(
                function="js.precision.DynamicLossScale",
                argument="factor",
                problem=f"must be greater than 1, got {self.factor!r}",
                fix="e.g. factor=2",
            )

    def adjust(self, grads_finite: jax.Array) -> DynamicLossScale:
        """The scale for the next step, after one whose gradients were finite
        (``grads_finite``, a scalar bool such as :func:`all_finite` gives)
        or not."""
        grads_finite = jnp.asarray(grads_finite)
        grown = self.loss_scale * self.factor
        at_period = self.counter == self.period - 1
        loss_scale = jnp.where(
            grads_finite,
            jnp.where(at_period & jnp.isfinite(grown), grown, self.loss_scale),
            jnp.maximum(self.min_loss_scale, self.loss_scale / self.factor),
        )
        counter = jnp.where(grads_finite, (self.counter + 1) % self.period, 0)
        return dataclasses.replace(self, loss_scale=loss_scale, counter=counter)
