"""Typed spec of ``complexity.dictionary`` (schema: src/featflow/schemas/complexity.schema.yaml): the keys every
method shares, the NNLS-coded methods' keys (nmf, seminmf) and one section per other method."""

from __future__ import annotations

from dataclasses import dataclass

from featflow.config import Spec


@dataclass(frozen=True)
class TopKSpec(Spec):
    """A TopK sparse autoencoder (Gao et al. 2024; ``dictionary.topk``)."""

    active: int = 8
    epochs: int = 30
    batch_size: int = 256
    lr: float = 3e-3
    batch_topk: bool = False
    auxk: int | None = None
    aux_coef: float = 0.03125
    dead_steps: int = 200


@dataclass(frozen=True)
class FileSpec(Spec):
    """A dictionary trained elsewhere, read from a local file (``dictionary.file``)."""

    path: str | None = None


@dataclass(frozen=True)
class DictionarySpec(Spec):
    """One dictionary on one layer (default: the experiment's last layer), by ``method``."""

    method: str = "nmf"
    layer: str | None = None
    k: int = 128
    solver: str = "hals"
    iterations: int = 100
    tol: float = 1e-4
    batch_size: int | None = None
    epochs: int = 5
    positions: bool = False
    code_iterations: int = 1000
    code_tol: float = 1e-4
    code_ridge: float = 1e-2
    second_seed: bool = True
    topk: TopKSpec = TopKSpec()
    file: FileSpec = FileSpec()
