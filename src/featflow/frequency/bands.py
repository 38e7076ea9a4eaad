"""What a Fourier mask says (Karantzas et al. 2022; SPEC 3.1): its energy in radial and angular frequency bands,
and whether per-image masks carry the class (a linear probe against shuffled labels)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F


def band_index(height: int, width: int, n_bands: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Radial and angular band of every frequency of the fftshifted (H, W) grid, each (H * W,) in [0, B).

    As Karantzas et al. define them, around the zero frequency at (H // 2, W // 2): radial bands are B annuli
    [r_i, r_i+1) of equal width up to the corner distance; angular bands are B wedges of the direction
    theta = atan2(-f_y, f_x) in [0, 2 pi), counterclockwise from +f_x with f_y pointing up the displayed mask,
    wedge i = (t_i, t_i+1] and wedge 0 = [0, t_1]. Named differences: the corner frequency (dropped by the
    authors' open outer annulus) is in the last annulus; the zero frequency, which has no direction and which the
    authors' rasterized wedges count in every second wedge, is in wedge 0; frequencies exactly on a wedge edge
    go to the wedge that ends there (the rasterization splits some of them the other way: 97% of the 32 x 32
    grid's frequencies fall in the same wedge as the authors', all but the edge diagonals).
    """
    fy = torch.arange(height, dtype=torch.float64) - height // 2
    fx = torch.arange(width, dtype=torch.float64) - width // 2
    gy, gx = torch.meshgrid(fy, fx, indexing="ij")
    radius = torch.sqrt(gy**2 + gx**2).flatten()
    radial = (radius / radius.max() * n_bands + 1e-9).floor().long().clamp_max(n_bands - 1)
    angle = torch.atan2(-gy, gx).flatten() % (2 * math.pi)
    angular = (torch.ceil(angle / (2 * math.pi) * n_bands - 1e-9).long() - 1).clamp(0, n_bands - 1)
    return radial, angular


def band_energies(masks: torch.Tensor, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Band energies of each fftshifted, L2-normalized mask as the authors define them: the L2 norm of the mask
    within each of B radial annuli and B angular wedges (:func:`band_index`), channels pooled.

    Parameters
    ----------
    masks : (N, Cm, H, W) masks.

    Returns
    -------
    radial, angular : (N, B) energies; the squares of each row sum to 1 (the bands partition the grid). NaN rows
        for an empty mask (every weight 0: the blank image keeps the prediction), which has no band profile.
    """
    shifted = torch.fft.fftshift(masks.double(), dim=(-2, -1))
    norm = shifted.flatten(1).norm(dim=1)
    norm = torch.where(norm > 0, norm, torch.nan)
    power = ((shifted / norm[:, None, None, None]) ** 2).sum(1).flatten(1)  # (N, H * W)
    radial, angular = band_index(masks.shape[-2], masks.shape[-1], n_bands)
    onehot = [F.one_hot(idx, n_bands).double() for idx in (radial, angular)]
    return (power @ onehot[0]).sqrt().numpy(), (power @ onehot[1]).sqrt().numpy()


def mask_probe(masks: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> tuple[float, float]:
    """Cross-validated accuracy of a linear classifier predicting the class from per-image masks, and the same
    with shuffled labels (the paper's control: 82% vs 21%). ``masks`` (N, D), ``labels`` (N,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score

    rng = np.random.default_rng(seed)
    folds = min(folds, labels.shape[0])
    split = KFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = LogisticRegression(max_iter=2000)
    real = cross_val_score(clf, masks, labels, cv=split).mean()
    shuffled = cross_val_score(clf, masks, rng.permutation(labels), cv=split).mean()
    return float(real), float(shuffled)
