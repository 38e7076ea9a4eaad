"""Linear V-information of every feature from every layer, and feature complexity (SPEC 1.3).

With V the linear predictors with Gaussian noise of fixed variance, ``I_V(x -> z) = Var(z) * R^2``; codes are
standardized so ``I_V = R^2`` of the best linear predictor, estimated on a held-out split with ridge regression.
All features of a layer share one (d_l x d_l) Cholesky factorization, as in scikit-learn's multi-output
``Ridge`` (the tests compare R^2 with it to 1e-10). Kept by hand for the held-out R^2 of every target, NaN for a
constant one, the trace-scaled lambda, and streaming: the statistics are accumulated over row chunks (centered
moments of the training rows and of the held-out rows, :class:`~featflow.metrics.moments.CoMoments`), so a
stage reads layers and codes from disk chunk by chunk, in one pass, and its memory does not grow with the number
of samples. The held-out SSE comes from the held-out moments (``diag(W^T X^T X W)`` costs one (d, d) x (d, k)
product per layer) rather than from predictions, which would need the weights before the held-out rows, i.e.
a second read of every row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy.linalg import lapack

from featflow.metrics.moments import CoMoments

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


RowChunks = Iterable[tuple[Sequence[np.ndarray], np.ndarray]]
"""Every row in order, chunk by chunk: the chunk's rows of every layer and of the targets."""


def array_chunks(
    layers: Sequence[np.ndarray], z: np.ndarray, rows: int = 2048
) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """:data:`RowChunks` over in-memory arrays, ``rows`` rows per chunk (the cost does not depend on it; small
    chunks keep the float64 copies of the rows in cache instead of paging in gigabytes at research widths)."""
    for start in range(0, z.shape[0], rows):
        yield [x[start : start + rows] for x in layers], z[start : start + rows]


def _ridge_weights(fit: CoMoments, ridge_scale: float) -> np.ndarray:
    """(d, k) ridge weights from centered moments, lambda = ridge_scale * trace(X^T X) / d (LAPACK Cholesky)."""
    gram = np.array(fit.xx, order="F")
    gram.flat[:: gram.shape[0] + 1] += max(ridge_scale * float(np.trace(gram)) / gram.shape[0], 1e-12)
    factor, info = lapack.dpotrf(gram, overwrite_a=1)
    if info:
        raise np.linalg.LinAlgError(f"vinfo: the ridge Gram matrix is not positive definite (LAPACK info {info})")
    return lapack.dpotrs(factor, fit.xz)[0]


def split_moments(chunks: RowChunks, train: np.ndarray, test: np.ndarray) -> tuple[list[CoMoments], list[CoMoments]]:
    """:class:`CoMoments` of every layer with the targets over the rows of the boolean (n,) masks ``train`` and
    ``test``, in one pass over the row chunks (one array per layer each)."""
    fits: list[CoMoments] = []
    helds: list[CoMoments] = []
    start = 0
    for xs, z in chunks:
        stop = start + z.shape[0]
        if not fits:
            fits, helds = ([CoMoments(x.shape[1], z.shape[1]) for x in xs] for _ in range(2))
        for mask, moments in ((train[start:stop], fits), (test[start:stop], helds)):
            z_rows = z[mask]
            for moment, x in zip(moments, xs, strict=True):
                moment.update(x[mask], z_rows)
        start = stop
    if start != train.shape[0]:
        raise ValueError(f"vinfo: {start} rows in the chunks for masks of {train.shape[0]}")
    return fits, helds


def held_out_r2(fit: CoMoments, held: CoMoments, ridge_scale: float = 1e-3) -> np.ndarray:
    """(k,) R^2 on the ``held`` rows of the ridge regression (with intercept) fitted on the ``fit`` rows, from the
    two sets of centered moments alone: with W the weights and r = (z - mean_z) - (x - mean_x) W around the fit's
    means, SSE = diag(Z^T Z - 2 W^T X^T Z + W^T X^T X W) on the held rows' centered moments plus n_held times the
    squared residual of their means. SST is around the held-out mean; NaN for a target constant there."""
    w = _ridge_weights(fit, ridge_scale)
    shift = (held.mean_z - fit.mean_z) - (held.mean_x - fit.mean_x) @ w
    sse = held.zz - 2.0 * np.einsum("dk,dk->k", w, held.xz) + np.einsum("dk,dk->k", w, held.xx @ w)
    sse = np.maximum(sse, 0.0) + held.n * shift**2
    raw = held.zz + held.n * held.mean_z**2  # sum of squares of the held-out targets
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / held.zz
    return np.where(held.zz > 1e-12 * np.maximum(raw, 1e-300), r2, np.nan)


def ridge_r2_chunks(chunks: RowChunks, train: np.ndarray, test: np.ndarray, ridge_scale: float = 1e-3) -> np.ndarray:
    """Held-out R^2 of ridge regressions of every target on every layer (with intercept), from the centered
    moments (:class:`CoMoments`) of the training rows and of the held-out rows, one pass over the row chunks
    (:func:`split_moments`), one Cholesky solve per layer (:func:`held_out_r2`). Memory does not grow with the
    number of rows, and the cost not with their number per chunk.

    Parameters
    ----------
    chunks : the rows (:data:`RowChunks`).  train, test : boolean (n,) row masks.
    ridge_scale : lambda = ridge_scale * trace(X^T X) / d on the centered training predictors.

    Returns
    -------
    (L, k) R^2 on the held-out rows (``1 - SSE / SST``, SST around the held-out mean; NaN for a constant target).
    Float64 throughout.
    """
    fits, helds = split_moments(chunks, train, test)
    return np.stack([held_out_r2(fit, held, ridge_scale) for fit, held in zip(fits, helds, strict=True)])


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask


def ridge_r2(
    x: np.ndarray, z: np.ndarray, train: np.ndarray, test: np.ndarray, ridge_scale: float = 1e-3
) -> np.ndarray:
    """Held-out R^2 of ridge regressions of every column of ``z`` (n, k) on ``x`` (n, d), all at once; ``train``
    and ``test`` are index arrays; see :func:`ridge_r2_chunks`. Returns (k,)."""
    n = z.shape[0]
    return ridge_r2_chunks(array_chunks([x], z), _mask(n, train), _mask(n, test), ridge_scale)[0]


def v_information_chunks(
    chunks: RowChunks, n: int, test_fraction: float = 0.2, seed: int = 0, ridge_scale: float = 1e-3
) -> np.ndarray:
    """I_V(f_l(x) -> z_i) for every layer and target of ``n`` rows given chunk by chunk: held-out R^2 (the fixed
    split :func:`split_indices`) clipped to [0, 1]; (L, k), NaN for targets constant on the held-out split."""
    train, test = split_indices(n, test_fraction, seed)
    # A negative held-out R^2 means no linear information: I_V >= 0 (the paper's bound 0 <= I_V <= Var z).
    return np.clip(ridge_r2_chunks(chunks, _mask(n, train), _mask(n, test), ridge_scale), 0.0, 1.0)


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
    return v_information_chunks(array_chunks(list(layers.values()), z), n, test_fraction, seed, ridge_scale)


class LayerMatch:
    """Which layers are identical to an earlier kept one (``np.allclose`` with rtol 1e-5, atol 1e-6 max|kept|,
    over all rows), accumulated over row chunks (one array per name each) with :meth:`update`."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._excess: dict[tuple[int, int], float] = {}  # max of |x_j - x_i| - rtol |x_i| over the rows, i < j
        self._peak = np.zeros(len(self.names))

    def update(self, xs: Sequence[np.ndarray]) -> None:
        """Add a chunk's rows of every layer."""
        self._peak = np.maximum(self._peak, [float(np.abs(x).max(initial=0.0)) for x in xs])
        for j, x in enumerate(xs):
            for i, y in enumerate(xs[:j]):
                if y.shape == x.shape:
                    worst = float((np.abs(x - y) - 1e-5 * np.abs(y)).max(initial=-np.inf))
                    self._excess[i, j] = max(self._excess.get((i, j), -np.inf), worst)

    def merged(self) -> dict[str, str]:
        """``{dropped name: kept name}`` for the layers identical to an earlier kept one; warns."""
        kept: list[int] = []
        merged: dict[str, str] = {}
        tolerance = 1e-6 * np.maximum(self._peak, 1e-12)
        for j, name in enumerate(self.names):
            same = next((i for i in kept if self._excess.get((i, j), np.inf) <= tolerance[i]), None)
            if same is None:
                kept.append(j)
            else:
                merged[name] = self.names[same]
                log.warning(
                    "vinfo: layer '%s' is identical to '%s' on these samples; counted once in K", name, merged[name]
                )
        return merged


def identical_layers(names: Sequence[str], chunks: Iterable[Sequence[np.ndarray]]) -> dict[str, str]:
    """``{dropped name: kept name}`` for layers identical to an earlier kept one, from one pass over row chunks
    (one array per name each); see :class:`LayerMatch`."""
    match = LayerMatch(names)
    for xs in chunks:
        match.update(xs)
    return match.merged()


def distinct_layers(layers: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Merge layers whose activations are identical (e.g. a conv block and the global average pool of it under
    ``pool: gap``): each would count twice in K's mean over layers. Keeps the first name, warns.

    Returns the distinct layers in order and ``{dropped name: kept name}``.
    """
    merged = identical_layers(list(layers), [list(layers.values())])
    return {name: x for name, x in layers.items() if name not in merged}, merged


def complexity(iv: np.ndarray) -> np.ndarray:
    """K = 1 - mean over layers of I_V: (L, k) -> (k,)."""
    return 1.0 - iv.mean(0)


def pooled_input(images: torch.Tensor, grid: int) -> np.ndarray:
    """The input image average-pooled to ``grid`` x ``grid``, flattened: (n, C, H, W) -> (n, C * grid^2)."""
    if images.ndim != 4:
        raise ValueError(f"vinfo.include_input: expected images (n, C, H, W), got shape {tuple(images.shape)}")
    return torch.nn.functional.adaptive_avg_pool2d(images.float(), grid).flatten(1).numpy()
