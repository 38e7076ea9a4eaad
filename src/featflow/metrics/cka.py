"""Linear CKA in feature space, the redundancy of every feature under random neuron masks (SPEC 1.4) and how
localized each feature is across neurons.

``CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centered data, with (d x d) Gram products only.
For one code column ``z``: ``CKA(X m, z) = (m . (X^T z))^2-sum / (sqrt(m^T (G o G) m) ||z||^2)``, so all
features and masks come from two matrix products. Written by hand: no library computes masked CKA in batch.

What the redundancy estimator measures. With ``G = X^T X``, ``c_i = X^T z_i`` (centered) and a keep-mask ``m``,
``CKA(X m, z_i) / CKA(X, z_i) = sum_j m_j w_ij g(m)`` where ``w_ij = c_ij^2 / ||c_i||^2`` is the share of the
feature's squared covariance carried by neuron j and ``g(m) = ||G||_F / ||G_m||_F`` depends on the mask only. So

    redundancy_i = E_m[CKA(X m, z_i) / CKA(X, z_i)] = sum_j w_ij a_j,    a_j = E_m[m_j g(m)],

a weighted mean over neurons of one per-neuron number ``a_j`` of the layer (high for a neuron whose Gram energy is
shared with correlated neurons, about ``1 - drop`` times E[g] for a neuron with private variance). It says *on
which* neurons a feature lies, not *on how many*: a feature on one neuron and a feature spread evenly over
neurons of equal ``a_j`` score the same. All masks enter through the (d,) vector ``a`` (one (M, d) x (d, d) and
one (d, M) x (M,) product per block of masks), so thousands of masks cost milliseconds; feature differences are
small (a few 1e-3 on a trained layer), so it takes thousands of masks for their ranks to settle.

How localized a feature is enters only the mask-to-mask variance of the kept share,
``Var_m(sum_j m_j w_ij) = drop (1 - drop) sum_j w_ij^2``; :func:`participation`, the participation ratio
``1 / sum_j w_ij^2`` of ``c_i`` (1: one neuron carries the feature, d: all carry it evenly), measures it directly.
"""

from __future__ import annotations

import numpy as np

from featflow.metrics.moments import CoMoments

MASK_BLOCK = 4096  # masks drawn and multiplied at once: memory stays (MASK_BLOCK, d) at any mask count


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


def mask_weights(gram: np.ndarray, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """``a_j = E_m[m_j g(m)]`` (d,), ``g(m) = ||G||_F / ||G_m||_F``, over Bernoulli keep-masks that drop a fraction
    ``drop`` of the neurons of the (d, d) centered Gram matrix ``G``, from ``n_masks`` random masks.

    Regression (control-variate) estimate: with independent mask entries of mean ``mu = 1 - drop`` and variance
    ``v = drop (1 - drop)``, ``a_j = mu E[g] + v beta_j`` exactly, ``beta`` the coefficients of the best linear
    predictor of ``g`` from ``m``; ``beta`` is fitted by least squares over the masks and ``E[g]`` is the mean of
    ``g`` less ``beta`` times the masks' chance deviation from ``mu``. The plain mean of ``m_j g`` carries the
    masks' chance correlations ``mean((m_j - mu)(m_l - mu)) beta_l`` over all d neurons as noise, which the fit
    removes (default cnn: rho(K, redundancy) ranges 0.03 over mask seeds at 500 masks, 0.13 with the plain mean
    of 5,000). Needs more masks than neurons; masks keeping only constant neurons (CKA undefined) are left out.
    All NaN when too few are left.
    """
    d = gram.shape[0]
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"redundancy.drop {drop}: expected in [0, 1)")
    if n_masks < d + 2:
        raise ValueError(f"redundancy.masks {n_masks}: expected >= {d + 2} (the layer's {d} neurons + 2)")
    energy = gram**2
    full = np.sqrt(energy.sum())
    used, sum_g, sum_m, sum_mm, sum_mg = 0, 0.0, np.zeros(d), np.zeros((d, d)), np.zeros(d)
    for size in np.diff(np.r_[np.arange(0, n_masks, MASK_BLOCK), n_masks]):
        masks = (rng.random((size, d)) >= drop).astype(np.float64)
        kept = np.einsum("md,md->m", masks @ energy, masks)  # ||G_m||_F^2 of every mask
        masks, g = masks[kept > 0], full / np.sqrt(kept[kept > 0])
        used, sum_g = used + g.size, sum_g + g.sum()
        sum_m, sum_mm, sum_mg = sum_m + masks.sum(0), sum_mm + masks.T @ masks, sum_mg + g @ masks
    if used < d + 2:
        return np.full(d, np.nan)
    mean_m, mean_g = sum_m / used, sum_g / used
    cov_mm = sum_mm - used * np.outer(mean_m, mean_m)
    cov_mg = sum_mg - used * mean_m * mean_g
    beta = np.linalg.lstsq(cov_mm, cov_mg, rcond=None)[0]
    level = mean_g - beta @ (mean_m - (1.0 - drop))  # E[g], the masks' chance mean kept out the same way
    return (1.0 - drop) * level + drop * (1.0 - drop) * beta


def loading_shares(cross: np.ndarray) -> np.ndarray:
    """``w_ij = c_ij^2 / ||c_i||^2`` (d, k): the share of feature i's squared covariance ``c_i = X^T z_i`` carried
    by neuron j; NaN columns for features with no linear relation to ``x``."""
    energy = cross**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return energy / energy.sum(0)


def participation(cross: np.ndarray) -> np.ndarray:
    """Participation ratio ``1 / sum_j w_ij^2`` (k,) of every feature's covariance with the neurons
    (:func:`loading_shares`): the effective number of neurons carrying it, from 1 (one neuron) to d (all evenly)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 / (loading_shares(cross) ** 2).sum(0)


def redundancy(x: np.ndarray, z: np.ndarray, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`masked_redundancy` of (n, d) activations ``x`` and (n, k) codes ``z``."""
    moments = CoMoments(x.shape[1], z.shape[1])
    moments.update(x, z)
    return masked_redundancy(moments, drop, n_masks, rng)


def masked_redundancy(moments: CoMoments, drop: float, n_masks: int, rng: np.random.Generator) -> np.ndarray:
    """E_m[CKA(x * m, z_i) / CKA(x, z_i)] over Bernoulli keep-masks that drop a fraction ``drop`` of neurons, from
    the centered moments of (x, z) (accumulated over row chunks by a stage): ``sum_j w_ij a_j`` (module docstring).

    Returns
    -------
    (k,) redundancy; NaN for features with no linear relation to ``x``.
    """
    return mask_weights(moments.xx, drop, n_masks, rng) @ loading_shares(moments.xz)
