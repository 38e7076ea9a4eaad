"""Neuron alignment (SPEC 4.3): cosines of the first-layer weights to the effective features, their metric MDS
map, and linear probes on the hidden features after the first and the second step."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import MDS

from featflow.theory.two_layer import Params, hidden


def unit_rows(w: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero): (..., n, d)."""
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    return w / np.where(norm > 0, norm, 1.0)


def feature_cosines(W: np.ndarray, effective: np.ndarray) -> np.ndarray:
    """Largest cosine of each neuron to the effective features +-sum_{j in A} M_j.

    W : (S, 2m, d) first-layer weights; effective : (2, d) unit rows. Returns (S, 2m).
    """
    return (unit_rows(W) @ effective.T).max(axis=-1)


def mds_map(w: np.ndarray, effective: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Metric MDS to 2-D of the neurons and the two effective features, dissimilarity 1 - cos (precomputed).

    w : (2m, d); effective : (2, d). Returns coordinates (2m + 2, 2), the effective features last, and the
    normalized stress (Stress-1).
    """
    points = unit_rows(np.concatenate([w, effective]))
    dissimilarity = np.clip(1.0 - points @ points.T, 0.0, 2.0)
    np.fill_diagonal(dissimilarity, 0.0)
    mds = MDS(
        n_components=2,
        metric_mds=True,
        metric="precomputed",
        init="classical_mds",
        n_init=1,
        random_state=seed,
        normalized_stress=True,
    )
    coords = mds.fit_transform(dissimilarity)
    return coords, float(mds.stress_)


def linear_probe(
    params: Params, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, C: float = 1.0
) -> np.ndarray:
    """Test accuracy of an l2-regularized logistic regression on the hidden features sigma(W x + b), per seed.

    The features are used as they are (no standardization): after step 1 the weights are tiny, the hidden
    units nearly constant, and a probe with a fixed regularization stays near chance, as in the paper.
    Returns (S,).
    """
    h, _ = hidden(params, x)
    h_test, _ = hidden(params, x_test)
    return np.array(
        [LogisticRegression(C=C, max_iter=2000).fit(h[s], y).score(h_test[s], y_test) for s in range(h.shape[0])]
    )
