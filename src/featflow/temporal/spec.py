"""Typed spec of the ``temporal`` config section (schema: src/featflow/schemas/temporal.schema.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from featflow.config import Spec


@dataclass(frozen=True)
class SedimentSpec(Spec):
    """The one dictionary recipe of every epoch, the final one included (null: the complexity dictionary's
    setting), and how the checkpoints' dictionaries are matched to the final model's."""

    k: int | None = None
    iterations: int | None = None
    match: str = "atoms"


@dataclass(frozen=True)
class TemporalSpec(Spec):
    """The whole ``temporal`` section."""

    experiments: tuple[str, ...] = ("planted",)
    fraction: float = 0.9
    min_gain: float = 0.05
    layer: str | None = None
    sediment: SedimentSpec = SedimentSpec()
