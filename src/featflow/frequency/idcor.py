"""TwoNN intrinsic dimension (Facco et al. 2017) and the intrinsic-dimension correlation IdCor (Basile et al.,
ICLR 2025; SPEC 3.3).

Nearest neighbors are found chunk by chunk (a (chunk, N) distance block at a time, on any device), so the memory
is O(chunk * N), never N x N. Written by hand: scikit-dimension implements TwoNN (the tests compare against it)
but not IdCor, and its neighbor search is a CPU k-d tree on the whole set, not chunked on the accelerator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from featflow import store

log = logging.getLogger(__name__)


def two_nearest(x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Distances (N, 2) of every row of ``x`` (N, D) to its first and second nearest other rows."""
    if x.shape[0] < 3:
        raise ValueError(f"two_nearest: need at least 3 points, got {x.shape[0]}")
    out = []
    for start in range(0, x.shape[0], chunk):
        block = torch.cdist(x[start : start + chunk], x)
        rows = torch.arange(block.shape[0], device=x.device)
        block[rows, rows + start] = float("inf")  # a point is not its own neighbor
        out.append(block.topk(2, dim=1, largest=False).values)
    return torch.cat(out)


def twonn(
    x: np.ndarray | torch.Tensor, fraction: float = 0.9, chunk: int = 2048, device: torch.device | str = "cpu"
) -> float:
    """TwoNN intrinsic dimension of the points ``x`` (N, D).

    Duplicated rows are dropped; mu = r2 / r1 is sorted and, with F(i) = i / N, the dimension is the slope of
    -log(1 - F) against log(mu) through the origin, fitted on the first ``fraction`` of the points (as scikit-dimension's
    ``TwoNN(discard_fraction=1 - fraction)`` and dadapy's ``compute_id_2NN`` with ``algorithm="base"``).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"twonn: fraction {fraction} must be in (0, 1]")
    points = torch.unique(torch.as_tensor(x, dtype=torch.float64, device=device), dim=0)
    r = two_nearest(points, chunk)
    log_mu = torch.sort(torch.log(r[:, 1] / r[:, 0])).values
    n = log_mu.shape[0]
    n_fit = int(n * fraction)
    y = -torch.log1p(-torch.arange(1, n_fit + 1, dtype=torch.float64, device=points.device) / n)
    lm = log_mu[:n_fit]
    return float((lm @ y) / (lm @ lm))


def standardize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per feature (column); constant features become 0."""
    x = torch.as_tensor(x, dtype=torch.float64)
    std = x.std(0)
    return (x - x.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))


@dataclass(frozen=True)
class IdCorResult:
    """IdCor, its permutation p-value, the three intrinsic dimensions and the permutation null (S,)."""

    idcor: float
    p_value: float
    id_x: float
    id_y: float
    id_xy: float
    id_perm: np.ndarray


def idcor(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    n_perm: int = 100,
    fraction: float = 0.9,
    scale: bool = True,
    seed: int = 0,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
) -> IdCorResult:
    """Intrinsic-dimension correlation of paired rows ``x`` (N, Dx) and ``y`` (N, Dy).

    IdCor = (Id_X + Id_Y - Id_XY) / max(Id_X, Id_Y), Id_XY the TwoNN dimension of [X | Y] (features
    standardized first when ``scale``). p = (1 + #{Id_perm < Id_XY}) / (S + 1) over S shuffles of Y's rows:
    dependence lowers the joint dimension below that of the shuffled (independent) pairings.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"idcor: x and y must pair rows, got {x.shape[0]} and {y.shape[0]}")
    if n_perm < 0:
        raise ValueError(f"idcor: n_perm {n_perm} must be >= 0")
    x = torch.as_tensor(x, dtype=torch.float64).reshape(x.shape[0], -1)
    y = torch.as_tensor(y, dtype=torch.float64).reshape(y.shape[0], -1)
    if scale:
        x, y = standardize(x), standardize(y)
    x, y = x.to(device), y.to(device)
    kw = {"fraction": fraction, "chunk": chunk, "device": device}
    id_x, id_y, id_xy = twonn(x, **kw), twonn(y, **kw), twonn(torch.cat([x, y], 1), **kw)
    gen = torch.Generator().manual_seed(seed)
    id_perm = np.array(
        [
            twonn(torch.cat([x, y[torch.randperm(y.shape[0], generator=gen).to(y.device)]], 1), **kw)
            for _ in range(n_perm)
        ]
    )
    p_value = (1 + int((id_perm < id_xy).sum())) / (n_perm + 1)
    value = (id_x + id_y - id_xy) / max(id_x, id_y)
    return IdCorResult(value, p_value, id_x, id_y, id_xy, id_perm)


def layer_idcor(
    activations_path: str | Path,
    pairs: Sequence[Sequence[str]],
    n_perm: int,
    max_samples: int,
    fraction: float,
    seed: int,
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """IdCor between pairs of layers of an activations file (kind ``activations``, ``layers/<name>`` (N, C)).

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
    rows = []
    for a, b in pairs:
        res = idcor(layers[a], layers[b], n_perm=n_perm, fraction=fraction, seed=seed, device=device)
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
                "id_perm_mean": float(res.id_perm.mean()) if n_perm else float("nan"),
            }
        )
        log.info("idcor %s vs %s: %.3f (p %.3g)", a, b, res.idcor, res.p_value)
    return pd.DataFrame(rows)
