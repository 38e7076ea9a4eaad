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


def spearman_ci(x: np.ndarray, y: np.ndarray, resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> Rho:
    """Spearman's rho of the finite pairs of (x, y) with a paired percentile bootstrap interval (scipy)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Rho(float("nan"), float("nan"), float("nan"), int(x.size))
    res = bootstrap(
        (x, y),
        _spearman,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return Rho(float(_spearman(x, y)), float(low), float(high), int(x.size))
