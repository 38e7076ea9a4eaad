"""Linear V-information of every feature from every layer, and feature complexity (SPEC 1.3).

With V the linear predictors with Gaussian noise of fixed variance, ``I_V(x -> z) = Var(z) * R^2``; codes are
standardized so ``I_V = R^2`` of the best linear predictor, estimated on a held-out split with ridge regression.
All features of a layer share one (d_l x d_l) Cholesky factorization, as in scikit-learn's multi-output
``Ridge`` (the tests compare R^2 with it to 1e-10). Kept by hand for the held-out R^2 of every target, NaN for a
constant one, and the trace-scaled lambda in one pass: 1.1x scikit-learn's time at n 2,000, d 64, k 512 on one
thread (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch

log = logging.getLogger(__name__)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random (train, held-out) split of ``range(n)``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"vinfo.test_fraction {test_fraction}: expected in (0, 1)")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    if n - n_test < 2:
        raise ValueError(f"vinfo: {n} samples are too few for a held-out split")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def ridge_r2(
    x: np.ndarray, z: np.ndarray, train: np.ndarray, test: np.ndarray, ridge_scale: float = 1e-3
) -> np.ndarray:
    """Held-out R^2 of ridge regressions of every column of ``z`` on ``x`` (with intercept), all at once.

    Parameters
    ----------
    x : (n, d) predictors.  z : (n, k) targets.  train, test : index arrays.
    ridge_scale : lambda = ridge_scale * trace(X^T X) / d on the centered training predictors.

    Returns
    -------
    (k,) R^2 on the held-out rows (``1 - SSE / SST``, SST around the held-out mean; NaN for a constant
    target). Float64 throughout.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    x_tr, z_tr = torch.from_numpy(x[train]), torch.from_numpy(z[train])
    x_te, z_te = torch.from_numpy(x[test]), torch.from_numpy(z[test])
    x_mean, z_mean = x_tr.mean(0), z_tr.mean(0)
    xc = x_tr - x_mean
    gram = xc.T @ xc
    lam = ridge_scale * torch.trace(gram) / gram.shape[0]
    gram.diagonal().add_(lam.clamp_min(1e-12))
    weights = torch.cholesky_solve(xc.T @ (z_tr - z_mean), torch.linalg.cholesky(gram))
    # SSE from the centered held-out residual and SST around the held-out mean
    resid = z_te - z_mean - (x_te - x_mean) @ weights
    sse = (resid * resid).sum(0)
    z_te_c = z_te - z_te.mean(0)
    sst = (z_te_c * z_te_c).sum(0)
    r2 = 1.0 - sse / sst
    return torch.where(sst > 1e-12 * (z_te * z_te).sum(0).clamp_min(1e-300), r2, torch.nan).numpy()


def v_information(
    layers: Mapping[str, np.ndarray],
    z: np.ndarray,
    test_fraction: float = 0.2,
    seed: int = 0,
    ridge_scale: float = 1e-3,
) -> np.ndarray:
    """I_V(f_l(x) -> z_i) for every layer and feature: held-out R^2 clipped to [0, 1].

    Parameters
    ----------
    layers : name -> (n, d_l) activations, in depth order.  z : (n, k) codes.

    Returns
    -------
    (L, k) I_V; NaN for features constant on the held-out split.
    """
    n = z.shape[0]
    for name, x in layers.items():
        if x.shape[0] != n:
            raise ValueError(f"vinfo: layer '{name}' has {x.shape[0]} samples, the codes {n}")
    train, test = split_indices(n, test_fraction, seed)
    # A negative held-out R^2 means no linear information: I_V >= 0 (the paper's bound 0 <= I_V <= Var z).
    rows = [np.clip(ridge_r2(x, z, train, test, ridge_scale), 0.0, 1.0) for x in layers.values()]
    return np.stack(rows)


def distinct_layers(layers: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Merge layers whose activations are identical (e.g. a conv block and the global average pool of it under
    ``pool: gap``): each would count twice in K's mean over layers. Keeps the first name, warns.

    Returns the distinct layers in order and ``{dropped name: kept name}``.
    """
    kept: dict[str, np.ndarray] = {}
    merged: dict[str, str] = {}
    for name, x in layers.items():
        same = next(
            (
                other
                for other, y in kept.items()
                if y.shape == x.shape and np.allclose(x, y, rtol=1e-5, atol=1e-6 * max(float(np.abs(y).max()), 1e-12))
            ),
            None,
        )
        if same is None:
            kept[name] = x
        else:
            merged[name] = same
            log.warning("vinfo: layer '%s' is identical to '%s' on these samples; counted once in K", name, same)
    return kept, merged


def complexity(iv: np.ndarray) -> np.ndarray:
    """K = 1 - mean over layers of I_V: (L, k) -> (k,)."""
    return 1.0 - iv.mean(0)


def pooled_input(images: torch.Tensor, grid: int) -> np.ndarray:
    """The input image average-pooled to ``grid`` x ``grid``, flattened: (n, C, H, W) -> (n, C * grid^2)."""
    if images.ndim != 4:
        raise ValueError(f"vinfo.include_input: expected images (n, C, H, W), got shape {tuple(images.shape)}")
    return torch.nn.functional.adaptive_avg_pool2d(images.float(), grid).flatten(1).numpy()
