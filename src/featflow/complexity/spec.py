"""Typed specs of the ``complexity`` config section (schema: src/featflow/schemas/complexity.schema.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from featflow.config import Spec
from featflow.dictionary.spec import DictionarySpec


@dataclass(frozen=True)
class VinfoSpec(Spec):
    include_input: bool = True
    input_grid: int = 4
    test_fraction: float = 0.2
    ridge_scale: float = 1e-3


@dataclass(frozen=True)
class RedundancySpec(Spec):
    drop: tuple[float, ...] = (0.5,)
    masks: int = 5000
    mask_seeds: int = 5


@dataclass(frozen=True)
class RobustnessSpec(Spec):
    sigmas: tuple[float, ...] = (0.01, 0.1, 0.5)
    units: str = "normalized"
    draws: int = 8
    images: int = 64
    chance_alpha: float = 0.01


@dataclass(frozen=True)
class FiguresSpec(Spec):
    top_images: int = 8
    n_features: int = 4
    umap_neighbors: int = 15


@dataclass(frozen=True)
class FlowSpec(Spec):
    """Feature flow through residual connections: which experiments, which blocks (None: all)."""

    experiments: tuple[str, ...] = ()
    blocks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MetaSpec(Spec):
    """Meta-features (featflow.complexity.meta): k-means clusters of the atoms, top images per cluster."""

    n_clusters: int = 8
    top_images: int = 6
    n_init: int = 10


@dataclass(frozen=True)
class ComplexitySpec(Spec):
    """The whole ``complexity`` section."""

    experiments: tuple[str, ...] = ("planted",)
    split: str = "test"
    shards: int = 1
    dictionary: DictionarySpec = DictionarySpec()
    vinfo: VinfoSpec = VinfoSpec()
    redundancy: RedundancySpec = RedundancySpec()
    robustness: RobustnessSpec = RobustnessSpec()
    figures: FiguresSpec = FiguresSpec()
    flow: FlowSpec = FlowSpec()
    meta_features: MetaSpec = MetaSpec()
