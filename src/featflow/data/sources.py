"""Folder data sets as torch Datasets that decode each image from its source as it is read (CIFAR-10 arrays,
ImageFolder files): apart from :mod:`featflow.data`, whose readers of stored arrays import torch only when called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


class Pixels(torch.utils.data.Dataset):
    """Rows ``positions`` of an (N, H, W, 3) uint8 array (a CIFAR-10 split) as PIL images through ``transform``."""

    def __init__(self, images: np.ndarray, positions: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images, self.positions, self.labels, self.transform = images, positions, labels, transform

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[self.positions[i]])), int(self.labels[i])


class Files(torch.utils.data.Dataset):
    """Image files under ``root`` with their labels, decoded by torchvision's ImageFolder loader (RGB PIL)."""

    def __init__(self, root: str, files: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.root, self.files, self.labels, self.transform = Path(root), files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.datasets.folder import default_loader

        return self.transform(default_loader(str(self.root / self.files[i]))), int(self.labels[i])
