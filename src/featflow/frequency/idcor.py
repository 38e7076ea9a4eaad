"""TwoNN intrinsic dimension (Facco et al. 2017) and the intrinsic-dimension correlation IdCor (Basile et al.,
ICLR 2025; SPEC 3.3).

Nearest neighbors are found block by block (a bounded block of the distances at a time, on any device), so the
working memory stays flat in N, never N x N. Written by hand: scikit-dimension implements TwoNN (the tests
compare against it) but not IdCor, and its neighbor search is a CPU k-d tree on the whole set (+3.3 GB and 12x
slower than this at 20k points), not blocked on the accelerator.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from featflow import store

log = logging.getLogger(__name__)


def two_nearest(x: torch.Tensor, block_bytes: int = 32 << 20) -> torch.Tensor:
    """Distances (N, 2) of every row of ``x`` (N, D) to its first and second nearest other rows.

    Candidates come from squared distances |a|^2 + |b|^2 - 2 a.b, computed block by block into one reused
    buffer of at most ``block_bytes`` (the working memory stays flat in N: fresh ``cdist`` blocks fragment the
    heap, +950 MB at 20k points); the two found neighbors' distances are then recomputed exactly.
    """
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"two_nearest: need at least 3 points, got {n}")
    rows = max(1, block_bytes // (n * x.element_size()))
    sq = (x * x).sum(1)
    buf = torch.empty(min(rows, n), n, dtype=x.dtype, device=x.device)
    out = torch.empty(n, 2, dtype=x.dtype, device=x.device)
    for start in range(0, n, rows):
        a = x[start : start + rows]
        d2 = torch.addmm(sq[None, :], a, x.T, alpha=-2.0, out=buf[: a.shape[0]])
        d2 += sq[start : start + a.shape[0], None]
        own = torch.arange(a.shape[0], device=x.device)
        d2[own, own + start] = float("inf")  # a point is not its own neighbor
        nearest = d2.topk(2, dim=1, largest=False).indices
        out[start : start + a.shape[0]] = (a[:, None, :] - x[nearest]).norm(dim=2)
    return out.sort(dim=1).values


def twonn(x: np.ndarray | torch.Tensor, fraction: float = 0.9, device: torch.device | str = "cpu") -> float:
    """TwoNN intrinsic dimension of the points ``x`` (N, D).

    Duplicated rows are dropped; mu = r2 / r1 is sorted and, with F(i) = i / N, the dimension is the slope of
    -log(1 - F) against log(mu) through the origin, fitted on the first ``fraction`` of the points (as
    scikit-dimension's ``TwoNN(discard_fraction=1 - fraction)`` and dadapy's ``compute_id_2NN`` with
    ``algorithm="base"``).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"twonn: fraction {fraction} must be in (0, 1]")
    points = torch.unique(torch.as_tensor(x, dtype=torch.float64, device=device), dim=0)
    return _dimension(two_nearest(points), fraction)


def _dimension(r: torch.Tensor, fraction: float) -> float:
    """The TwoNN fit from the sorted distances ``r`` (N, 2) of N distinct points to their two nearest neighbors."""
    log_mu = torch.sort(torch.log(r[:, 1] / r[:, 0])).values
    n = log_mu.shape[0]
    n_fit = int(n * fraction)
    y = -torch.log1p(-torch.arange(1, n_fit + 1, dtype=torch.float64, device=r.device) / n)
    lm = log_mu[:n_fit]
    return float((lm @ y) / (lm @ lm))


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """(N, N) squared Euclidean distances |a|^2 + |b|^2 - 2 a.b between the rows of ``x`` (N, D)."""
    sq = (x * x).sum(1)
    return torch.addmm(sq[None, :] + sq[:, None], x, x.T, alpha=-2.0)


@dataclass(frozen=True)
class JointNull:
    """TwoNN dimensions of [X | Y[perm]] for many row permutations of Y, the wider block's distances formed once.

    The joint squared distance of two points is the sum of their X and Y parts. The wider of the two sets (say X)
    keeps its row order in every shuffle, so its (N, N) squared distances are computed once and each shuffle adds
    only the narrower set's, one (N, N) x D_narrow product instead of the old D_x + D_y (half the product when
    the widths are equal; a gather of a precomputed Y block costs as much as that product at these widths). The
    two nearest neighbors found there are measured again exactly on the joint rows, and duplicated joint rows are
    dropped as :func:`twonn` drops them, so each value equals ``twonn(torch.cat([x, y[perm]], 1))``. Working
    memory: the (N, N) float64 block (200 MB at the largest preset's 5,000 samples).
    """

    x: torch.Tensor
    y: torch.Tensor
    wide_x: bool
    wide2: torch.Tensor
    x_group: torch.Tensor
    y_group: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor) -> JointNull:
        """The wider set's distances and the duplicate groups (equal rows share a group) of ``x`` and ``y``."""
        wide_x = x.shape[1] >= y.shape[1]
        groups = [torch.unique(v, dim=0, return_inverse=True)[1] for v in (x, y)]
        return cls(x, y, wide_x, squared_distances(x if wide_x else y), *groups)

    def dimension(self, perm: torch.Tensor, fraction: float, block_bytes: int = 32 << 20) -> float:
        """TwoNN dimension of [X | Y[perm]], ``perm`` (N,) a permutation of the rows of Y."""
        n = perm.shape[0]
        order = torch.arange(n, device=perm.device)
        # the joint points (x[xi], y[yi]), in the wider set's row order
        xi, yi = (order, perm) if self.wide_x else (torch.argsort(perm), order)
        pair = self.x_group[xi] * (int(self.y_group.max()) + 1) + self.y_group[yi]
        inverse = torch.unique(pair, return_inverse=True)[1]
        first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long, device=perm.device)
        keep = first.scatter_reduce_(0, inverse, order, "amin").sort().values
        if keep.shape[0] < 3:
            raise ValueError(f"two_nearest: need at least 3 points, got {keep.shape[0]}")
        xi, yi = xi[keep], yi[keep]
        wide, narrow = (xi, self.y[yi]) if self.wide_x else (yi, self.x[xi])
        wide2 = self.wide2 if keep.shape[0] == n else self.wide2[wide[:, None], wide]
        sq = (narrow * narrow).sum(1)
        rows = max(1, block_bytes // (keep.shape[0] * wide2.element_size()))
        nearest = torch.empty(keep.shape[0], 2, dtype=torch.long, device=perm.device)
        for start in range(0, keep.shape[0], rows):
            part = slice(start, start + rows)
            d2 = torch.addmm(wide2[part] + sq[None, :], narrow[part], narrow.T, alpha=-2.0)
            d2 += sq[part, None]
            own = torch.arange(d2.shape[0], device=perm.device)
            d2[own, own + start] = float("inf")  # a point is not its own neighbor
            nearest[part] = d2.topk(2, dim=1, largest=False).indices
        joint = torch.cat([self.x[xi], self.y[yi]], 1)
        return _dimension((joint[:, None, :] - joint[nearest]).norm(dim=2).sort(dim=1).values, fraction)


def standardize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per feature (column); constant features become 0."""
    x = torch.as_tensor(x, dtype=torch.float64)
    std = x.std(0)
    return (x - x.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))


@dataclass(frozen=True)
class IdCorResult:
    """IdCor, its permutation p-values and nulls, and the three intrinsic dimensions.

    ``p_value`` / ``id_perm`` (S,) come from shuffling all rows of Y; ``p_stratified`` / ``id_perm_stratified``
    from shuffling them within classes (NaN / empty without classes). ``null_below`` is True when the plain null's
    mean lies below max(Id_X, Id_Y): impossible for independent pairs (the joint dimension is at least each set's),
    the signature of clustered data where a plain shuffle is not a valid null.
    """

    idcor: float
    p_value: float
    id_x: float
    id_y: float
    id_xy: float
    id_perm: np.ndarray
    p_stratified: float = float("nan")
    id_perm_stratified: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    null_below: bool = False


def within_class_permutation(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A permutation (N,) of row indices that moves every row to a row of the same class ``labels`` (N,)."""
    positions = torch.argsort(labels, stable=True)  # rows grouped by class
    keys = labels.double() + 0.5 * torch.rand(labels.shape, generator=generator, dtype=torch.float64)
    perm = torch.empty_like(positions)
    perm[positions] = torch.argsort(keys)  # each class's rows, in random order, onto that class's positions
    return perm


def _p_value(null: np.ndarray, observed: float) -> float:
    """(1 + #{null < observed}) / (S + 1): dependence lowers the joint dimension below the null's."""
    return (1 + int((null < observed).sum())) / (null.shape[0] + 1)


def idcor(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    n_perm: int = 100,
    fraction: float = 0.9,
    scale: bool = True,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    strata: np.ndarray | torch.Tensor | None = None,
) -> IdCorResult:
    """Intrinsic-dimension correlation of paired rows ``x`` (N, Dx) and ``y`` (N, Dy).

    IdCor = (Id_X + Id_Y - Id_XY) / max(Id_X, Id_Y), Id_XY the TwoNN dimension of [X | Y] (features
    standardized first when ``scale``). p = (1 + #{Id_perm < Id_XY}) / (S + 1) over S shuffles of Y's rows
    (the authors' test; the shuffles' distances are formed once, :class:`JointNull`). With class labels
    ``strata`` (N,), a second null shuffles Y's rows only within classes: on clustered data a plain shuffle mixes
    the clusters and lowers Id_perm below the real Id_XY (p = 1 however dependent the pairs are), while the
    within-class null keeps the clusters and tests the dependence inside them.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"idcor: x and y must pair rows, got {x.shape[0]} and {y.shape[0]}")
    if n_perm < 0:
        raise ValueError(f"idcor: n_perm {n_perm} must be >= 0")
    if strata is not None and len(strata) != x.shape[0]:
        raise ValueError(f"idcor: strata must label every row, got {len(strata)} for {x.shape[0]}")
    x = torch.as_tensor(x, dtype=torch.float64).reshape(x.shape[0], -1)
    y = torch.as_tensor(y, dtype=torch.float64).reshape(y.shape[0], -1)
    if scale:
        x, y = standardize(x), standardize(y)
    x, y = x.to(device), y.to(device)
    kw = {"fraction": fraction, "device": device}
    id_x, id_y, id_xy = twonn(x, **kw), twonn(y, **kw), twonn(torch.cat([x, y], 1), **kw)
    gen = torch.Generator().manual_seed(seed)

    joint = JointNull.of(x, y) if n_perm else None

    def null(draw) -> np.ndarray:
        return np.array([joint.dimension(draw().to(y.device), fraction) for _ in range(n_perm)])

    id_perm = null(lambda: torch.randperm(y.shape[0], generator=gen))
    value = (id_x + id_y - id_xy) / max(id_x, id_y)
    below = bool(n_perm) and float(id_perm.mean()) < max(id_x, id_y)
    if below:
        log.warning(
            "idcor: the row-shuffle null's mean joint dimension %.2f is below max(Id_X, Id_Y) = %.2f: "
            "clustered data, the plain p-value is not valid; use the within-class (stratified) p-value",
            float(id_perm.mean()),
            max(id_x, id_y),
        )
    result = IdCorResult(value, _p_value(id_perm, id_xy), id_x, id_y, id_xy, id_perm, null_below=below)
    if strata is None:
        return result
    labels = torch.as_tensor(np.asarray(strata)).long()
    id_strat = null(lambda: within_class_permutation(labels, gen))
    return dataclasses.replace(result, p_stratified=_p_value(id_strat, id_xy), id_perm_stratified=id_strat)


def layer_idcor(
    activations_path: str | Path,
    pairs: Sequence[Sequence[str]],
    n_perm: int,
    max_samples: int,
    fraction: float,
    *,
    device: torch.device | str = "cpu",
    seed: int,
) -> pd.DataFrame:
    """IdCor between pairs of layers of an activations file (kind ``activations``, ``layers/<name>`` (N, C)),
    with the plain and the within-class (stratified by the file's ``labels``) permutation p-values.

    Uses the first ``max_samples`` rows of a seeded permutation; returns one row per pair.
    """
    with store.h5_reader(activations_path, "activations") as handle:
        available = sorted(handle["layers"])
        for pair in pairs:
            for name in pair:
                if name not in available:
                    raise ValueError(
                        f"frequency.idcor.pairs: layer '{name}' is not in {activations_path}; "
                        f"expected one of {available}"
                    )
        n = handle["labels"].shape[0]
        keep = np.sort(np.random.default_rng(seed).permutation(n)[:max_samples])
        layers = {name: handle["layers"][name][keep] for pair in pairs for name in pair}
        labels = handle["labels"][keep]
    rows = []
    for a, b in pairs:
        res = idcor(layers[a], layers[b], n_perm=n_perm, fraction=fraction, seed=seed, device=device, strata=labels)
        rows.append(
            {
                "layer_a": a,
                "layer_b": b,
                "n": int(keep.shape[0]),
                "id_a": res.id_x,
                "id_b": res.id_y,
                "id_joint": res.id_xy,
                "idcor": res.idcor,
                "p_value": res.p_value,
                "p_value_stratified": res.p_stratified,
                "id_perm_mean": float(res.id_perm.mean()) if n_perm else float("nan"),
                "id_perm_stratified_mean": float(res.id_perm_stratified.mean()) if n_perm else float("nan"),
                "null_below": res.null_below,
                "n_perm": n_perm,
            }
        )
        log.info("idcor %s vs %s: %.3f (p %.3g, within-class p %.3g)", a, b, res.idcor, res.p_value, res.p_stratified)
    return pd.DataFrame(rows)
