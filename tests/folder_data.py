"""Data sets written by tests: CIFAR-10 python batches in torchvision's on-disk format, ImageFolder trees of
generated PNGs, a tiny planted set with an untrained small CNN. Nothing is downloaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featflow.config import DatasetSpec, ModelSpec
from featflow.data import load_split, write_dataset
from featflow.models import build_model
from featflow.models.checkpoint import save_checkpoint

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with five training batches and a test batch of ``per_batch`` random images
    each (pickled dicts: ``data`` (n, 3072) uint8 in CHW order, ``labels``), and ``batches.meta``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "batch_label": name,
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, size=per_batch).tolist(),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}))
    return root


def write_imagefolder(
    root: Path,
    classes: int = 3,
    per_class: int = 4,
    size: tuple[int, int] = (40, 48),
    seed: int = 0,
    tinted: bool = False,
) -> Path:
    """``root/train/<class>/<i>.png`` and ``root/val/<class>/<i>.png``: random RGB images of ``size`` (H, W),
    written class by class (torchvision's ImageFolder lists them so, as it lists ImageNet). ``tinted``: each
    class's pixels are drawn around a color of its own, so that a small network learns the classes."""
    rng = np.random.default_rng(seed)
    colors = np.random.default_rng(seed + 1).integers(40, 216, size=(classes, 3))
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class{c:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                if tinted:
                    noise = rng.normal(0.0, 30.0, size=(*size, 3))
                    pixels = np.clip(colors[c] + noise, 0, 255).astype(np.uint8)
                else:
                    pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def planted_and_cnn(root: Path) -> tuple[Path, Path]:
    """A tiny planted data set (40 + 37 images) and an untrained, seeded width-4 small CNN checkpoint in ``root``."""
    torch.set_num_threads(1)
    data = root / "planted.h5"
    write_dataset(DatasetSpec(kind="planted", n_train=40, n_test=37, seed=3), data, {})
    spec = ModelSpec(arch="smallcnn", dataset="planted", width=4)
    split = load_split(data, "test")
    torch.manual_seed(0)
    model = build_model(spec, tuple(split.x.shape[1:]), split.num_classes)
    checkpoint = root / "cnn.pt"
    save_checkpoint(checkpoint, model, spec, tuple(split.x.shape[1:]), split.num_classes, {})
    return data, checkpoint
