"""The benchmark families, run in this order by ``python -m benchmarks``.

A family is anything with ``name``, ``title``, ``unavailable() -> str | None``
(why it must be skipped, or None) and ``run(config) -> FamilyResult``. A
family whose code does not exist yet is listed here anyway and reported as
skipped, with the reason, so the results say what is missing.

To add a model to figures (a)-(d), write ``benchmarks/models/<name>.py``
with ``build(quick: bool) -> ModelSpec`` (see :mod:`benchmarks.models`) and
add a :class:`~benchmarks.families.model.ModelFamily` for it below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from benchmarks.families import layer_stack, memory
from benchmarks.families.model import ModelFamily
from benchmarks.harness import Config, FamilyResult

__all__ = ["FAMILIES", "ModuleFamily", "family_names"]


@dataclasses.dataclass(frozen=True)
class ModuleFamily:
    """A family whose measuring is a module's ``run``, and its
    ``unavailable`` where it can be skipped."""

    name: str
    title: str
    run_fn: Callable[[Config], FamilyResult]
    unavailable_fn: Callable[[], str | None] | None = None

    def unavailable(self) -> str | None:
        return None if self.unavailable_fn is None else self.unavailable_fn()

    def run(self, config: Config) -> FamilyResult:
        return self.run_fn(config)


FAMILIES = [
    # Many small variables: the per-variable overhead targets.
    ModelFamily("mlp", "benchmarks.models.mlp", "MLP, depth 100, width 64", ("overhead",)),
    # The seq2seq demo's model A (bidirectional LSTM encoder, attention LSTM
    # decoder, js.scan over time) at the demo's size.
    ModelFamily(
        "seq2seq", "benchmarks.models.seq2seq", "seq2seq model A (attention RNN)", ("train_step",)
    ),
    ModuleFamily(
        "layer_stack",
        "Compile time versus depth: `layer_stack` versus unrolled",
        layer_stack.run,
    ),
    ModuleFamily(
        "memory", "Peak host memory of `init` (~500M parameters)", memory.run, memory.unavailable
    ),
]


def family_names() -> list[str]:
    return [family.name for family in FAMILIES]
