"""Data sets by name, materialized once into ``results/data/{dataset}.h5`` and read back as tensors.

Every data set becomes the same shape on disk: groups ``train`` and ``test``, each with ``x`` (uint8 images
(N, C, H, W) or float32 vectors (N, d)), ``y`` (int64 labels) and, where the generator knows them, ``factors``
(float32 (N, F), names in the ``factor_names`` attribute). Deterministic from the spec's seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.config import DatasetSpec
from featflow.data.planted import CLASS_NAMES as PLANTED_CLASSES
from featflow.data.planted import FACTOR_NAMES as PLANTED_FACTORS
from featflow.data.planted import generate_planted

log = logging.getLogger(__name__)

KIND = "dataset"


@dataclass
class Split:
    """One split in memory: inputs, labels and optional factors."""

    x: np.ndarray
    y: np.ndarray
    factors: np.ndarray | None = None


@dataclass
class Bundle:
    """A materialized data set: its splits plus description attributes and extra arrays."""

    train: Split
    test: Split
    classes: tuple[str, ...]
    factor_names: tuple[str, ...] = ()
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _take(split: Split, keep: np.ndarray) -> Split:
    """The samples of ``split`` selected by ``keep`` (indices or a boolean mask), factors included."""
    return Split(split.x[keep], split.y[keep], None if split.factors is None else split.factors[keep])


def _subsample(split: Split, cap: int, rng: np.random.Generator) -> Split:
    if split.x.shape[0] <= cap:
        return split
    return _take(split, np.sort(rng.choice(split.x.shape[0], size=cap, replace=False)))


def _resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 (N, C, H, W) images with torchvision."""
    from torchvision.transforms.v2 import functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.resize(torch.from_numpy(images), [size, size], antialias=True)
    return out.numpy()


def _to_gray(images: np.ndarray) -> np.ndarray:
    from torchvision.transforms.v2 import functional as F

    return F.rgb_to_grayscale(torch.from_numpy(images)).numpy()


def _planted(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    splits = [Split(*generate_planted(n, spec.image_size, rng)) for n in (spec.n_train, spec.n_test)]
    return Bundle(splits[0], splits[1], PLANTED_CLASSES, PLANTED_FACTORS)


def _shi(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from featflow.theory.shi_data import generate_shi

    train, test, m = generate_shi(spec.shi, spec.n_train, spec.n_test, rng)
    names = tuple(f"phi{i}" for i in range(spec.shi.D))
    as_split = [Split(s.x, (s.y > 0).astype(np.int64), s.phi) for s in (train, test)]
    return Bundle(as_split[0], as_split[1], ("even", "odd"), names, {"M": m})


def _digits(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)[:, None]
    images = _resize_uint8(images, spec.image_size)
    order = rng.permutation(images.shape[0])
    n_test = min(spec.n_test, images.shape[0] // 5)
    test, train = order[:n_test], order[n_test:]
    return Bundle(
        Split(images[train], digits.target[train].astype(np.int64)),
        Split(images[test], digits.target[test].astype(np.int64)),
        tuple(str(c) for c in range(10)),
    )


def _cifar10(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from torchvision.datasets import CIFAR10

    sets = [CIFAR10(root=spec.path, train=flag, download=False) for flag in (True, False)]
    train, test = (Split(s.data.transpose(0, 3, 1, 2).copy(), np.asarray(s.targets, np.int64)) for s in sets)
    train, test = _subsample(train, spec.n_train, rng), _subsample(test, spec.n_test, rng)
    train.x, test.x = _resize_uint8(train.x, spec.image_size), _resize_uint8(test.x, spec.image_size)
    return Bundle(train, test, tuple(sets[0].classes))


def _imagefolder(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    root = Path(spec.path)
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise ValueError(f"datasets.path '{root}': expected an ImageFolder tree with train/ and val/ (or test/)")
    transform = v2.Compose([v2.PILToTensor(), v2.Resize(spec.image_size), v2.CenterCrop(spec.image_size)])
    splits = []
    for folder, cap in ((root / "train", spec.n_train), (test_dir, spec.n_test)):
        full = ImageFolder(folder)
        keep = np.sort(rng.choice(len(full), size=min(cap, len(full)), replace=False))
        subset = [(transform(full[i][0].convert("RGB")).numpy(), full[i][1]) for i in keep]
        splits.append(Split(np.stack([s[0] for s in subset]), np.asarray([s[1] for s in subset], np.int64)))
        classes = tuple(full.classes)
    return Bundle(splits[0], splits[1], classes)


BUILDERS = {
    "planted": _planted,
    "shi": _shi,
    "digits": _digits,
    "cifar10": _cifar10,
    "imagefolder": _imagefolder,
}


def build_dataset(spec: DatasetSpec) -> Bundle:
    """Materialize a data set in memory, deterministically from ``spec.seed``."""
    if spec.kind not in BUILDERS:
        raise ValueError(f"datasets.kind '{spec.kind}': expected one of {sorted(BUILDERS)}")
    bundle = BUILDERS[spec.kind](spec, np.random.default_rng(spec.seed))
    if spec.grayscale and bundle.train.x.ndim == 4 and bundle.train.x.shape[1] == 3:
        bundle.train.x, bundle.test.x = _to_gray(bundle.train.x), _to_gray(bundle.test.x)
    if spec.exclude_classes:
        bundle.train = _without_classes(bundle.train, spec.exclude_classes)
    return bundle


def _without_classes(split: Split, classes: tuple[int, ...]) -> Split:
    """Drop the samples of ``classes`` (a network never trained on them keeps their logits untrained)."""
    return _take(split, ~np.isin(split.y, classes))


def write_dataset(spec: DatasetSpec, path: str | Path, attrs: dict[str, Any]) -> None:
    """Build the data set and write it atomically to ``path``."""
    bundle = build_dataset(spec)
    arrays: dict[str, Any] = {}
    for name in ("train", "test"):
        split: Split = getattr(bundle, name)
        arrays[name] = {"x": split.x, "y": split.y}
        if split.factors is not None:
            arrays[name]["factors"] = split.factors
    if bundle.extra:
        arrays["extra"] = bundle.extra
    meta = {"classes": list(bundle.classes), "factor_names": list(bundle.factor_names), "kind_of_data": spec.kind}
    store.write_h5(path, KIND, arrays, {**attrs, **meta})
    log.info(
        "%s: %d train, %d test samples, %d classes, input %s",
        spec.kind,
        bundle.train.x.shape[0],
        bundle.test.x.shape[0],
        len(bundle.classes),
        bundle.train.x.shape[1:],
    )


@dataclass
class LoadedSplit:
    """A split read back from disk: float inputs (images scaled to [0, 1]) and labels as tensors."""

    x: torch.Tensor
    y: torch.Tensor
    factors: np.ndarray | None
    classes: tuple[str, ...]
    factor_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split '{split}': expected 'train' or 'test'")


def split_size(path: str | Path, split: str) -> int:
    """The number of samples in one split of a data set file, read from its metadata only."""
    _check_split(split)
    with store.h5_reader(path, KIND) as handle:
        return int(handle[split]["y"].shape[0])


def load_split(path: str | Path, split: str, rows: slice = slice(None)) -> LoadedSplit:
    """Read one split of a data set file (only ``rows`` of it); uint8 images become float32 in [0, 1]."""
    _check_split(split)
    with store.h5_reader(path, KIND) as handle:
        group = handle[split]
        x = group["x"][rows]
        y = group["y"][rows]
        factors = group["factors"][rows] if "factors" in group else None
        classes = tuple(str(c) for c in store.decode_attr(handle.attrs["classes"]))
        factor_names = tuple(str(c) for c in store.decode_attr(handle.attrs["factor_names"]))
    tensor = torch.from_numpy(x).float().div_(255.0) if x.dtype == np.uint8 else torch.from_numpy(x).float()
    return LoadedSplit(tensor, torch.from_numpy(y).long(), factors, classes, factor_names)
