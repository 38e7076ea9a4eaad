"""Typed specs of the ``frequency:`` config section (schema: ``workflow/schemas/frequency.schema.yaml``)."""

from __future__ import annotations

import dataclasses

from featflow.config import Spec


@dataclasses.dataclass(frozen=True)
class DatasetMaskSpec(Spec):
    """One mask for the whole evaluation set, trained with the true labels (Karantzas et al. 2022)."""

    lam: float = 0.2
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 128
    target_ratio: float = 0.99
    stall: float = 1e-3


@dataclasses.dataclass(frozen=True)
class ImageMaskSpec(Spec):
    """Per-image masks toward the network's own prediction, optimized all at once."""

    lam: float = 0.07
    lr: float = 0.008
    max_steps: int = 20000
    patience: int = 300
    tol: float = 1e-4
    n_images: int = 64
    batch_size: int = 64


@dataclasses.dataclass(frozen=True)
class MasksSpec(Spec):
    """Fourier masks of essential frequencies for each model in ``models`` (the first is the reference)."""

    models: tuple[str, ...] = ("cnn",)
    dataset: str = "planted"
    max_samples: int = 1000
    channels: str = "shared"
    n_bands: int = 16
    probe_folds: int = 5
    dataset_mask: DatasetMaskSpec = DatasetMaskSpec()
    image_masks: ImageMaskSpec = ImageMaskSpec()


@dataclasses.dataclass(frozen=True)
class MapsSpec(Spec):
    """Essential vs adversarial per-channel frequency maps and their correlation (Basile et al.)."""

    models: tuple[str, ...] = ("cnn",)
    dataset: str = "planted"
    n_images: int = 64
    lam: float = 0.5
    lr: float = 0.01
    max_steps: int = 500
    patience: int = 50
    tol: float = 1e-4
    eps: float = 8 / 255
    attack_steps: int = 10
    attack_step: float = 0.25
    pool: int = 1
    n_perm: int = 100


@dataclasses.dataclass(frozen=True)
class IdCorSpec(Spec):
    """IdCor between pairs of layers of an experiment's activations."""

    experiments: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    split: str = "test"
    max_samples: int = 1000
    n_perm: int = 100
    fraction: float = 0.9

