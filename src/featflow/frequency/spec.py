"""Typed specs of the ``frequency:`` config section (schema: ``src/featflow/schemas/frequency.schema.yaml``)."""

from __future__ import annotations

import dataclasses

from featflow.config import Spec


@dataclasses.dataclass(frozen=True)
class DatasetMaskSpec(Spec):
    """One mask for the whole evaluation set, trained with the true labels (Karantzas et al. 2022)."""

    lam: float = 0.2
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 1
    target_ratio: float = 0.99
    stall: float = 1e-3
    zero_below: float = 1e-3


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
    fit_fraction: float = 0.5
    val_fraction: float = 0.25
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
    min_steps: int = 500
    max_steps: int = 5000
    window: int = 20
    tol: float = 1e-5
    attack: str = "pgd"
    eps: float = 8 / 255
    attack_steps: int = 10
    attack_step: float = 0.25
    pool: int = 1
    n_perm: int = 100
    authors_shuffles: int = 50
    min_support: int = 4


@dataclasses.dataclass(frozen=True)
class IdCorSpec(Spec):
    """IdCor between pairs of layers of an experiment's activations."""

    experiments: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    split: str = "test"
    max_samples: int = 1000
    n_perm: int = 100
    fraction: float = 0.9


def reference_problems(config: dict) -> list[str]:
    """Names used by the validated config's ``frequency:`` section that do not exist (one message each)."""
    freq, problems = config.get("frequency", {}), []
    for part in ("masks", "maps"):
        sec = freq.get(part, {})
        for name in sec.get("models", []):
            if name not in config["models"]:
                problems.append(
                    f"config key 'frequency.{part}.models': '{name}' is not a model; "
                    f"expected one of {sorted(config['models'])}"
                )
        if sec.get("models") and sec["dataset"] not in config["datasets"]:
            problems.append(
                f"config key 'frequency.{part}.dataset': '{sec['dataset']}' is not a data set; "
                f"expected one of {sorted(config['datasets'])}"
            )
    sec = freq.get("idcor", {})
    for name in sec.get("experiments", []):
        exp = config["experiments"].get(name)
        if exp is None:
            problems.append(
                f"config key 'frequency.idcor.experiments': '{name}' is not an experiment; "
                f"expected one of {sorted(config['experiments'])}"
            )
            continue
        if sec["split"] not in exp["activations"]["splits"]:
            problems.append(
                f"config key 'frequency.idcor.split': '{sec['split']}' is not extracted by experiment "
                f"'{name}' (activations.splits {exp['activations']['splits']})"
            )
        problems += [
            f"config key 'frequency.idcor.pairs': layer '{layer}' is not among the layers of experiment "
            f"'{name}' ({exp['layers']})"
            for pair in sec["pairs"]
            for layer in pair
            if layer not in exp["layers"]
        ]
    return problems
