"""Linear CKA in feature space and the redundancy of every feature under random neuron masks (SPEC 1.4).

``CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centered data, with (d x d) Gram products only.
For one code column ``z``: ``CKA(X m, z) = (m . (X^T z))^2-sum / (sqrt(m^T (G o G) m) ||z||^2)``, so all
features and masks come from two matrix products. Written by hand: no library computes masked CKA in batch.
"""

from __future__ import annotations

import numpy as np


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between (n, d1) and (n, d2) representations (centered here), in feature space."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x) ** 2
    return float(num / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def feature_cka(x: np.ndarray, z: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """CKA between ``x * m`` and each single code column, for every mask and feature.

    Parameters
    ----------
    x : (n, d) activations.  z : (n, k) codes.  masks : (M, d) neuron masks in {0, 1}; None means no mask.

    Returns
    -------
    (M, k) CKA values ((1, k) without masks); NaN for constant features.
    """
    x = np.asarray(x, np.float64) - np.mean(x, 0)
    z = np.asarray(z, np.float64) - np.mean(z, 0)
    masks = np.ones((1, x.shape[1])) if masks is None else np.asarray(masks, np.float64)
    if masks.ndim != 2 or masks.shape[1] != x.shape[1]:
        raise ValueError(f"cka: masks of shape {masks.shape}, expected (M, {x.shape[1]})")
    cross_sq = (x.T @ z) ** 2  # (d, k): squared <x_j, z_i>
    gram_sq = (x.T @ x) ** 2  # (d, d)
    z_sq = (z**2).sum(0)  # (k,): ||z^T z||_F for one column
    num = (masks**2) @ cross_sq  # (M, k)
    x_norm = np.sqrt(np.einsum("md,de,me->m", masks, gram_sq, masks))  # (M,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (x_norm[:, None] * z_sq[None, :])


def redundancy(x: np.ndarray, z: np.ndarray, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """E_m[CKA(x * m, z_i) / CKA(x, z_i)] over Bernoulli keep-masks that drop a fraction ``drop`` of neurons.

    Returns
    -------
    (k,) redundancy; NaN for features with no linear relation to ``x``.
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"redundancy.drop {drop}: expected in [0, 1)")
    if n_masks < 1:
        raise ValueError(f"redundancy.masks {n_masks}: expected >= 1")
    masks = (rng.random((n_masks, x.shape[1])) >= drop).astype(np.float64)
    full = feature_cka(x, z)[0]
    masked = feature_cka(x, z, masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(masked, 0) / full if np.isfinite(masked).any() else np.full(z.shape[1], np.nan)
