"""The test images the frequency analyses evaluate: a seeded sample of a data set's test split, the same for
every model analyzed with the same seed (masks and maps are compared image by image)."""

from __future__ import annotations

from pathlib import Path

import torch

from featflow.data import load_split


def seeded_test_images(
    data_path: str | Path, n: int, seed: int, key: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator]:
    """The first ``n`` of a seeded permutation of the test split: images (N, C, H, W), labels, their indices in the
    split, and the generator that drew them. Two models analyzed with the same seed see the same images.
    ``key`` names the config entry for the error message."""
    split = load_split(data_path, "test")
    if split.x.ndim != 4:
        raise ValueError(f"{key}: the frequency analyses need images (N, C, H, W), got {tuple(split.x.shape)}")
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(split.x.shape[0], generator=generator)[:n]
    return split.x[keep], split.y[keep], keep, generator
