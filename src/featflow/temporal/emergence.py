"""When features become decodable during training, and which features of two dictionaries are the same.

Written by hand: Fel et al. (2024) publish no code for their temporal analyses (Fig. 5).
"""

from __future__ import annotations

import numpy as np


def emergence_epoch(curves: np.ndarray, epochs: np.ndarray, fraction: float) -> np.ndarray:
    """The first epoch at which each curve reaches ``fraction`` of its final value.

    Parameters
    ----------
    curves : (E, k) I_V of k features at E checkpoints, in epoch order (the last row: the final model).
    epochs : (E,) increasing epochs of the rows.  fraction : in (0, 1].

    Returns
    -------
    (k,) float epochs; NaN for a feature whose final I_V is NaN or 0 (never decodable, so it never emerges).
    NaN values before the end count as not reached.
    """
    curves, epochs = np.asarray(curves, float), np.asarray(epochs, float)
    if curves.ndim != 2 or curves.shape[0] != epochs.shape[0]:
        raise ValueError(f"emergence_epoch: curves {curves.shape} do not have one row per epoch ({epochs.shape[0]})")
    if not 0 < fraction <= 1:
        raise ValueError(f"emergence_epoch: fraction {fraction}, expected in (0, 1]")
    if np.any(np.diff(epochs) <= 0):
        raise ValueError(f"emergence_epoch: epochs {epochs.tolist()} are not increasing")
    final = curves[-1]
    with np.errstate(invalid="ignore"):
        reached = np.nan_to_num(curves, nan=-np.inf) >= fraction * final[None, :]
    first = reached.argmax(0)  # the final row always reaches a finite final value
    out = epochs[first]
    out[~(np.isfinite(final) & (final > 0))] = np.nan
    return out


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    m = np.asarray(m, float)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of the rows of ``a`` (k_a, d) to the rows of ``b`` (k_b, d) maximizing the total cosine
    (Hungarian assignment, scipy's ``linear_sum_assignment``); min(k_a, k_b) pairs.

    Returns (rows of a, rows of b, their cosines), sorted by the rows of ``a``.
    """
    from scipy.optimize import linear_sum_assignment

    if a.shape[1] != b.shape[1]:
        raise ValueError(f"match: rows of dimension {a.shape[1]} and {b.shape[1]}")
    cos = unit_rows(a) @ unit_rows(b).T
    rows, cols = linear_sum_assignment(-cos)
    return rows, cols, cos[rows, cols]


def matched_values(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """(k,) values of the matched features of another dictionary, placed at the features they match; NaN where a
    feature has no partner."""
    out = np.full(k, np.nan)
    out[cols] = np.asarray(values, float)[rows]
    return out


def decreasing_fraction(first: np.ndarray, last: np.ndarray) -> tuple[float, int]:
    """Fraction of the features with both values finite whose value at ``last`` is below the one at ``first``,
    and how many such features there are."""
    first, last = np.asarray(first, float), np.asarray(last, float)
    ok = np.isfinite(first) & np.isfinite(last)
    n = int(ok.sum())
    return (float((last[ok] < first[ok]).mean()) if n else float("nan")), n
