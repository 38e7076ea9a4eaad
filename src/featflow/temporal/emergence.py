"""When features become decodable during training, and which features of two dictionaries are the same.

Written by hand: Fel et al. (2024) publish no code for their temporal analyses (Figs. 5-6).

Emergence is measured on the learned part of each curve: the first row (epoch 0, the initialization) is the
untrained network's control, and a feature emerges at the first checkpoint whose gain over it reaches a fraction
of its final gain. A feature already readable from the untrained network (I_V_0 >= fraction x I_V_final) says
nothing about what training learns first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_curves(curves: np.ndarray, epochs: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    curves, epochs = np.asarray(curves, float), np.asarray(epochs, float)
    if curves.ndim != 2 or curves.shape[0] != epochs.shape[0]:
        raise ValueError(f"emergence: curves {curves.shape} do not have one row per epoch ({epochs.shape[0]})")
    if not 0 < fraction <= 1:
        raise ValueError(f"emergence: fraction {fraction}, expected in (0, 1]")
    if np.any(np.diff(epochs) <= 0):
        raise ValueError(f"emergence: epochs {epochs.tolist()} are not increasing")
    if epochs.shape[0] < 2 or epochs[0] != 0:
        raise ValueError(
            f"emergence: epochs {epochs.tolist()} do not start at 0 (the initialization, the untrained control) "
            "followed by a later epoch; add 0 to the model's train.checkpoints"
        )
    return curves, epochs


def gains(curves: np.ndarray, min_gain: float) -> np.ndarray:
    """(k,) whether each feature's I_V rises from the initialization (first row) to the end (last row) by more than
    ``min_gain``; NaN at either end counts as no gain."""
    gain = np.asarray(curves, float)[-1] - np.asarray(curves, float)[0]
    return np.nan_to_num(gain, nan=-np.inf) > min_gain


def emergence_epoch(curves: np.ndarray, epochs: np.ndarray, fraction: float, min_gain: float) -> np.ndarray:
    """The first epoch at which each feature has gained ``fraction`` of its whole gain over the initialization.

    Parameters
    ----------
    curves : (E, k) I_V of k features at E checkpoints in epoch order: the first row epoch 0 (the untrained
        network), the last the final model.
    epochs : (E,) increasing epochs of the rows, starting at 0.  fraction : in (0, 1].
    min_gain : a feature emerges only when I_V_final - I_V_0 exceeds it (:func:`gains`).

    Returns
    -------
    (k,) float epochs: the first e with I_V_e - I_V_0 >= fraction (I_V_final - I_V_0), never epoch 0; NaN for a
    feature that does not gain. NaN values before the end count as not reached.
    """
    curves, epochs = _check_curves(curves, epochs, fraction)
    learned = curves - curves[0]
    with np.errstate(invalid="ignore"):
        reached = np.nan_to_num(learned[1:], nan=-np.inf) >= fraction * learned[-1][None, :]
    out = epochs[1:][reached.argmax(0)]  # a gaining feature always reaches its gain at the last row
    out[~gains(curves, min_gain)] = np.nan
    return out


def readable_at_init(curves: np.ndarray, epochs: np.ndarray, fraction: float) -> np.ndarray:
    """(k,) whether each feature is already decodable from the untrained network: I_V_0 >= fraction x I_V_final
    with a positive final I_V (what the emergence rule without the control called "emerged at epoch 0")."""
    curves, _ = _check_curves(curves, epochs, fraction)
    base, final = curves[0], curves[-1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(base) & np.isfinite(final) & (final > 0) & (base >= fraction * final)


def planted_order(
    curves: np.ndarray, epochs: np.ndarray, names: Sequence[str], order: Sequence[str], fraction: float, min_gain: float
) -> str:
    """Whether the planted factors ``order`` (simple to complex) emerge in that order over training.

    ``curves`` (E, F) are the I_V of the factors ``names``. An order is called only when every factor in it is
    below the emergence threshold at the initialization and gains: "holds" (e_1 <= e_2 <= ... and e_1 < e_last)
    or "VIOLATED"; else "inconclusive: " with the reason (a factor readable from the untrained network has no
    emergence to order), or "n/a" without the factors.
    """
    names = list(names)
    if not set(order) <= set(names):
        return "n/a"
    at = [names.index(name) for name in order]
    curves = np.asarray(curves, float)[:, at]
    readable = readable_at_init(curves, epochs, fraction)
    if readable.any():
        why = ", ".join(
            f"{name} (I_V_0 {curves[0, j]:.3f} >= {fraction:g} x final {curves[-1, j]:.3f})"
            for j, name in enumerate(order)
            if readable[j]
        )
        return f"inconclusive: readable at initialization: {why}"
    learned = gains(curves, min_gain)
    if not learned.all():
        return "inconclusive: no gain over the initialization: " + ", ".join(
            name for j, name in enumerate(order) if not learned[j]
        )
    e = emergence_epoch(curves, epochs, fraction, min_gain)
    return "holds" if np.all(np.diff(e) >= 0) and e[0] < e[-1] else "VIOLATED"


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


def sign_test(first: np.ndarray, last: np.ndarray) -> tuple[float, int, float]:
    """Whether values fall from ``first`` to ``last`` more often than they rise: the fraction of the features with
    both values finite and unequal whose value at ``last`` is lower, how many such features, and the two-sided
    binomial p of that count against 1/2 (scipy's ``binomtest``; NaN without such features)."""
    from scipy.stats import binomtest

    first, last = np.asarray(first, float), np.asarray(last, float)
    ok = np.isfinite(first) & np.isfinite(last) & (first != last)
    n = int(ok.sum())
    if not n:
        return float("nan"), 0, float("nan")
    down = int((last[ok] < first[ok]).sum())
    return down / n, n, float(binomtest(down, n, 0.5).pvalue)
