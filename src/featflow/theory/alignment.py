"""Neuron alignment (SPEC 4.3): cosines of the first-layer weights to the effective features, their metric MDS
map, and linear probes on the hidden features after the first and the second step."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import MDS
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

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
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    C: float = 1.0,
    standardize: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Test accuracy of an l2-regularized logistic regression on the hidden features sigma(W x + b), per seed,
    and whether it predicts a single class on the whole test set.

    Raw features (``standardize=False``): after step 1 the hidden units vary by ~1e-4, so with a fixed
    regularization the probe is a constant predictor and its accuracy is the class balance (the paper's ~52%
    is of that kind). ``standardize=True`` scales each unit to unit variance on the training set first, which
    shows what the features linearly carry. Returns accuracy (S,) and constant (S,) booleans.
    """
    h, _ = hidden(params, x)
    h_test, _ = hidden(params, x_test)
    acc, constant = [], []
    for s in range(h.shape[0]):
        probe = LogisticRegression(C=C, max_iter=2000)
        if standardize:
            probe = make_pipeline(StandardScaler(), probe)
        predicted = probe.fit(h[s], y).predict(h_test[s])
        acc.append(float((predicted == y_test).mean()))
        constant.append(np.unique(predicted).size == 1)
    return np.array(acc), np.array(constant)


def sample_direction(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The unit vector E[y x] of a sample: the direction a first gradient step pushes every neuron toward."""
    v = (y[:, None] * x).mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-300)
