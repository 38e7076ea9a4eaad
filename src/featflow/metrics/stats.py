"""Rank correlations with bootstrap confidence intervals, for every rho the complexity figures report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, rankdata


@dataclass(frozen=True)
class Rho:
    """Spearman's rho over ``n`` finite pairs with a percentile-bootstrap (1 - alpha) interval."""

    rho: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.rho:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n = {self.n})"


def deciles(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the simplest and the most complex 10% of the features with a finite K."""
    ok = np.isfinite(k)
    lo, hi = np.quantile(k[ok], [0.1, 0.9])
    return ok & (k <= lo), ok & (k >= hi)


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis`` (vectorized over bootstrap resamples): Pearson's r of the ranks."""
    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis) / np.sqrt((rx**2).sum(axis) * (ry**2).sum(axis))


def _paired_bootstrap(statistic, data: tuple[np.ndarray, ...], resamples: int, alpha: float, seed: int) -> Rho:
    """``statistic`` of the paired ``data`` with its paired percentile bootstrap interval (scipy)."""
    res = bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return Rho(float(statistic(*data)), float(low), float(high), int(data[0].size))


def spearman_ci(x: np.ndarray, y: np.ndarray, resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> Rho:
    """Spearman's rho of the finite pairs of (x, y) with a paired percentile bootstrap interval (scipy)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Rho(float("nan"), float("nan"), float("nan"), int(x.size))
    return _paired_bootstrap(_spearman, (x, y), resamples, alpha, seed)


def _partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Partial Spearman rho(x, y | z) along ``axis``: Pearson's r of the residuals of rank(x) and rank(y) after a
    least-squares line on rank(z) (vectorized over bootstrap resamples)."""
    rx, ry, rz = (rankdata(v, axis=axis) for v in (x, y, z))
    rx, ry, rz = (r - r.mean(axis=axis, keepdims=True) for r in (rx, ry, rz))
    with np.errstate(invalid="ignore", divide="ignore"):
        zz = (rz**2).sum(axis, keepdims=True)
        ex = rx - (rx * rz).sum(axis, keepdims=True) / zz * rz
        ey = ry - (ry * rz).sum(axis, keepdims=True) / zz * rz
        return (ex * ey).sum(axis) / np.sqrt((ex**2).sum(axis) * (ey**2).sum(axis))


def partial_spearman_ci(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, resamples: int = 2000, alpha: float = 0.05, seed: int = 0
) -> Rho:
    """Partial Spearman rho(x, y | z) of the finite triples (rank-based: what is left of the rank relation of x
    and y once each is linearly predicted from z's ranks) with a paired percentile bootstrap interval."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[ok], y[ok], z[ok]
    if x.size < 4 or min(np.ptp(x), np.ptp(y), np.ptp(z)) == 0:
        return Rho(float("nan"), float("nan"), float("nan"), int(x.size))
    return _paired_bootstrap(_partial_spearman, (x, y, z), resamples, alpha, seed)
