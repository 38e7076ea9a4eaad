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


def _gratings(size: int) -> np.ndarray:
    """(2, 4, size, size) square-wave gratings of period 4 with values 0.15 / 0.85 (mean 0.5 either way), per
    orientation (0 horizontal, 1 vertical) and phase."""
    stripes = ((np.arange(size)[None, :] + np.arange(4)[:, None]) // 2) % 2
    wave = np.where(stripes == 1, 0.85, 0.15)  # (phase, size)
    return np.stack([np.repeat(wave[:, :, None], size, 2), np.repeat(wave[:, None, :], size, 1)])


def _paint(images: np.ndarray, which: np.ndarray, top: np.ndarray, left: np.ndarray, patches: np.ndarray) -> None:
    """Write ``patches`` (m, h, w, 3), or broadcastable to it, into ``images`` (n, 3, S, S) at images ``which``
    (m,), rows from ``top`` (m,) and columns from ``left`` (m,), all at once."""
    h, w = patches.shape[1:3]
    rows = top[:, None, None] + np.arange(h)[None, :, None]
    cols = left[:, None, None] + np.arange(w)[None, None, :]
    images[which[:, None, None], :, rows, cols] = patches


def generate_planted(n: int, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``n`` planted images, all at once (the random draws come per factor for every image, then the
    gratings and squares are painted by index arrays).

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
    # grating: a 2 x 2 block of cells, top-left cell (r, c) with r, c in {0, .., GRID-2}, the patch inside it
    corner = rng.integers(0, _GRID - 1, (n, 2))
    start = corner * cell + rng.integers(0, 2 * cell - patch + 1, (n, 2))
    phase = rng.integers(0, 4, n)
    _paint(images, np.arange(n), start[:, 0], start[:, 1], _gratings(patch)[orientation, phase][..., None])
    # squares: `count` distinct cells outside the grating's block (the first of a random order of the free cells)
    cells = np.arange(_GRID * _GRID)
    a, b = cells // _GRID, cells % _GRID
    taken = ((a[None] - corner[:, :1]) // 2 == 0) & ((b[None] - corner[:, 1:]) // 2 == 0)  # the 2 x 2 block
    order = np.argsort(np.where(taken, np.inf, rng.random((n, cells.size))), axis=1)[:, : _COUNTS.max()]
    offset = rng.integers(0, cell - square + 1, (n, _COUNTS.max(), 2))
    image, slot = np.nonzero(np.arange(_COUNTS.max())[None] < count[:, None])
    chosen = order[image, slot]
    top = chosen // _GRID * cell + offset[image, slot, 0]
    left = chosen % _GRID * cell + offset[image, slot, 1]
    _paint(images, image, top, left, np.broadcast_to(_SQUARE_RGB, (square, square, 3))[None])
    images = np.clip(images + rng.normal(0.0, 0.02, size=images.shape), 0.0, 1.0)
    labels = (4 * color + 2 * orientation + parity).astype(np.int64)
    factors = np.stack([color, orientation, parity, count], axis=1).astype(np.float32)
    return (images * 255).round().astype(np.uint8), labels, factors
