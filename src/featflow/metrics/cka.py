"""Linear CKA in feature space and the redundancy of every feature under random neuron masks (SPEC 1.4).

``CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centered data, with (d x d) Gram products only.
For one code column ``z``: ``CKA(X m, z) = (m . (X^T z))^2-sum / (sqrt(m^T (G o G) m) ||z||^2)``, so all
features and masks come from two matrix products. Written by hand: no library computes masked CKA in batch.
"""

from __future__ import annotations

import numpy as np

from featflow.metrics.moments import CoMoments


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between (n, d1) and (n, d2) representations (centered here), in feature space."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x) ** 2
    return float(num / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def masked_cka(gram: np.ndarray, cross: np.ndarray, z_sq: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """CKA between ``x * m`` and each single code column, for every mask and feature, from centered moments.

    Parameters
    ----------
    gram : (d, d) centered ``X^T X``.  cross : (d, k) centered ``X^T Z``.  z_sq : (k,) centered ``diag(Z^T Z)``.
    masks : (M, d) neuron masks in {0, 1}; None means no mask.

    Returns
    -------
    (M, k) CKA values ((1, k) without masks); NaN for constant features.
    """
    d = gram.shape[0]
    masks = np.ones((1, d)) if masks is None else np.asarray(masks, np.float64)
    if masks.ndim != 2 or masks.shape[1] != d:
        raise ValueError(f"cka: masks of shape {masks.shape}, expected (M, {d})")
    num = (masks**2) @ cross**2  # (M, k): squared <x_j, z_i> over kept neurons
    x_norm = np.sqrt(np.einsum("md,de,me->m", masks, gram**2, masks))  # (M,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (x_norm[:, None] * z_sq[None, :])


def feature_cka(x: np.ndarray, z: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """:func:`masked_cka` of (n, d) activations ``x`` and (n, k) codes ``z`` (centered here)."""
    x = np.asarray(x, np.float64) - np.mean(x, 0)
    z = np.asarray(z, np.float64) - np.mean(z, 0)
    return masked_cka(x.T @ x, x.T @ z, (z**2).sum(0), masks)


def redundancy(x: np.ndarray, z: np.ndarray, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`masked_redundancy` of (n, d) activations ``x`` and (n, k) codes ``z``."""
    moments = CoMoments(x.shape[1], z.shape[1])
    moments.update(x, z)
    return masked_redundancy(moments, drop, n_masks, rng)


def masked_redundancy(moments: CoMoments, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """E_m[CKA(x * m, z_i) / CKA(x, z_i)] over Bernoulli keep-masks that drop a fraction ``drop`` of neurons, from
    the centered moments of (x, z) (accumulated over row chunks by a stage).

    Returns
    -------
    (k,) redundancy; NaN for features with no linear relation to ``x``.
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"redundancy.drop {drop}: expected in [0, 1)")
    if n_masks < 1:
        raise ValueError(f"redundancy.masks {n_masks}: expected >= 1")
    masks = (rng.random((n_masks, moments.xx.shape[0])) >= drop).astype(np.float64)
    full = masked_cka(moments.xx, moments.xz, moments.zz)[0]
    masked = masked_cka(moments.xx, moments.xz, moments.zz, masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(masked, 0) / full if np.isfinite(masked).any() else np.full(full.shape[0], np.nan)
