"""Planted-factor images: classes combine three factors of designed complexity (SPEC 5.1).

- ``color``: the background hue (warm or cool), linearly readable from the input pixels;
- ``orientation``: a horizontal or vertical grating in a patch at a random place, which needs local filters
  (its pixel average is the same for both orientations);
- ``parity``: the parity of the number (1 to 3) of small green squares, which needs counting and a non-linear
  read-out of the count.

The label is ``4 * color + 2 * orientation + parity`` (8 classes). A faithful complexity pipeline must rank
K(color) < K(orientation) < K(parity). Written by hand: no library generates such data.
"""

from __future__ import annotations

import numpy as np

from featflow.config import PLANTED_CLASS_NAMES as CLASS_NAMES
from featflow.config import PLANTED_FACTOR_NAMES as FACTOR_NAMES

__all__ = ["CLASS_NAMES", "FACTOR_NAMES", "generate_planted"]
_SQUARE_RGB = np.array([0.1, 0.95, 0.1], dtype=np.float32)  # saturated green, unlike any background
# Counts 1-3 with 3 rare: parity has a weak first-order (count) signal, so SGD can start learning it, but the
# exact parity needs a non-linear read-out of the count (decodable only after the hidden layer).
_COUNTS = np.array([1, 2, 3])
_COUNT_PROBS = np.array([0.45, 0.45, 0.10])
_GRID = 4  # the image is a 4 x 4 grid of cells; the grating takes a 2 x 2 block, squares single cells


def _backgrounds(color: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) background RGB: warm (red-dominant) for color 0, cool (blue-dominant) for color 1."""
    n = color.shape[0]
    base = np.where(color[:, None] == 0, [0.75, 0.4, 0.25], [0.25, 0.4, 0.75])
    return np.clip(base + rng.normal(0.0, 0.06, size=(n, 3)), 0.0, 1.0)


def _grating(size: int, vertical: bool, phase: int) -> np.ndarray:
    """A (size, size) square-wave grating of period 4 with values 0.15 / 0.85 (mean 0.5 either way)."""
    stripes = ((np.arange(size) + phase) // 2) % 2
    wave = np.where(stripes == 1, 0.85, 0.15)
    return np.tile(wave[None, :], (size, 1)) if vertical else np.tile(wave[:, None], (1, size))


def generate_planted(n: int, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``n`` planted images.

    Returns
    -------
    images : (n, 3, S, S) uint8
    labels : (n,) int64 in [0, 8)
    factors : (n, 4) float32 columns ``FACTOR_NAMES``
    """
    if image_size < 16:
        raise ValueError(f"planted: image_size {image_size} too small, expected >= 16")
    cell = image_size // _GRID
    color = rng.integers(0, 2, n)
    orientation = rng.integers(0, 2, n)
    count = rng.choice(_COUNTS, size=n, p=_COUNT_PROBS)
    parity = count % 2
    images = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    images[:] = _backgrounds(color, rng)[:, :, None, None]
    patch = int(round(1.5 * cell))
    square = max(2, cell // 2)
    for i in range(n):
        # grating: a 2 x 2 block of cells, top-left cell (r, c) with r, c in {0, .., GRID-2}
        r, c = rng.integers(0, _GRID - 1, 2)
        y0 = r * cell + rng.integers(0, 2 * cell - patch + 1)
        x0 = c * cell + rng.integers(0, 2 * cell - patch + 1)
        images[i, :, y0 : y0 + patch, x0 : x0 + patch] = _grating(patch, bool(orientation[i]), int(rng.integers(4)))
        free = [(a, b) for a in range(_GRID) for b in range(_GRID) if not (r <= a <= r + 1 and c <= b <= c + 1)]
        for k in rng.choice(len(free), size=count[i], replace=False):
            a, b = free[k]
            sy = a * cell + rng.integers(0, cell - square + 1)
            sx = b * cell + rng.integers(0, cell - square + 1)
            images[i, :, sy : sy + square, sx : sx + square] = _SQUARE_RGB[:, None, None]
    images = np.clip(images + rng.normal(0.0, 0.02, size=images.shape), 0.0, 1.0)
    labels = (4 * color + 2 * orientation + parity).astype(np.int64)
    factors = np.stack([color, orientation, parity, count], axis=1).astype(np.float32)
    return (images * 255).round().astype(np.uint8), labels, factors
