"""Benchmark models, each written the ways its competitors' users write it.

A model module (``benchmarks/models/<name>.py``) defines
``build(quick: bool) -> ModelSpec``: the same model as pure JAX (the
baseline), jaxscope, flax.linen, flax.core and Haiku, plus inputs, a loss
and converters between each implementation's params tree and the pure-JAX
one. :mod:`benchmarks.families.model` measures any such module; to benchmark
a new model, write the module and add a ``ModelFamily`` entry for it in
:mod:`benchmarks.families`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["Impl", "ModelSpec", "build_impls", "flax_core_impl", "identity"]


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation of a model.

    Attributes:
        name: a short key (``"pure_jax"``, ``"jaxscope"``, ...).
        label: the column header.
        init: ``init(rng_key, *inputs) -> params`` in the framework's layout.
        apply: ``apply(params, *inputs) -> output``, pure, no rng.
        to_common: the framework's params tree to the pure-JAX layout.
        from_common: the pure-JAX layout to the framework's params tree.
    """

    name: str
    label: str
    init: Callable[..., Any]
    apply: Callable[..., Any]
    to_common: Callable[[Any], Any]
    from_common: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model written several ways, with what a train step needs.

    Attributes:
        title: a heading such as ``"MLP, depth 100, width 64"``.
        impls: the implementations; the first is the pure-JAX baseline.
        skipped: implementations that could not be built, with the reason
            (Haiku is optional).
        inputs: the positional arguments after ``rng``/``params``.
        target: what the loss compares the output with.
        loss: ``loss(output, target) -> scalar``.
        n_variables: how many variables the model has (``get_variable``
            calls per apply), for the per-variable overhead.
        notes: sentences printed under the model's table, for figures that
            need them to be read right.
    """

    title: str
    impls: list[Impl]
    skipped: dict[str, str]
    inputs: tuple
    target: Any
    loss: Callable[[Any, Any], Any]
    n_variables: int
    notes: tuple[str, ...] = ()


def identity(tree: Any) -> Any:
    """The converter of a layout that is pure JAX's own."""
    return tree


def flax_core_impl(model: Callable) -> Impl:
    """The ``flax.core`` implementation of ``model(scope, *inputs)``: params
    live under ``"params"`` and are otherwise pure JAX's layout."""
    from flax import core

    def init(rng: Any, *inputs: Any) -> Any:
        return core.init(model)(rng, *inputs)[1]

    return Impl(
        "flax_core",
        "flax.core",
        init,
        core.apply(model),
        lambda variables: core.unfreeze(variables)["params"],
        lambda params: {"params": params},
    )


def build_impls(makers: tuple[Callable[..., Impl], ...], *args: Any) -> tuple[list, dict]:
    """``make(*args)`` for each maker, and the reason for each one whose
    framework cannot be imported (Haiku is optional)."""
    impls, skipped = [], {}
    for make in makers:
        try:
            impls.append(make(*args))
        except ImportError as e:
            skipped[make.__name__] = f"not importable ({e})"
    return impls, skipped
