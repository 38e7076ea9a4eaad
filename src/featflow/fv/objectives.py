"""Aggregations Agg: layer output -> feature response y, and the objective S_x(y) (SPEC 2.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

AGGREGATIONS = ("maxpool_mean", "mean", "center", "identity")


def aggregate(act: torch.Tensor, kind: str, n_f: int | None = None) -> torch.Tensor:
    """Feature response y (B, n_f) of a layer output ``act`` (B, C, H, W) or (B, C).

    ``maxpool_mean``: 3x3 max pool (stride 1, no padding) then the spatial mean; ``mean``: spatial mean;
    ``center``: the center position; ``identity``: a vector layer as is. Only the first ``n_f`` features
    are kept when ``n_f`` is given.
    """
    if kind not in AGGREGATIONS:
        raise ValueError(f"fv.aggregation '{kind}': expected one of {AGGREGATIONS}")
    if n_f is not None:
        if n_f > act.shape[1]:
            raise ValueError(f"fv.n_f = {n_f}: the layer has only {act.shape[1]} features")
        act = act[:, :n_f]
    if kind == "identity":
        if act.dim() != 2:
            raise ValueError(f"fv.aggregation 'identity' needs a vector layer, got shape {tuple(act.shape)}")
        return act
    if act.dim() != 4:
        raise ValueError(f"fv.aggregation '{kind}' needs a (B, C, H, W) layer, got shape {tuple(act.shape)}")
    if kind == "maxpool_mean":
        return F.max_pool2d(act, 3, stride=1).mean(dim=(2, 3))
    if kind == "mean":
        return act.mean(dim=(2, 3))
    return act[:, :, act.shape[2] // 2, act.shape[3] // 2]


def objective(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """S_x(y) = (x^T y) (x^T y / ||y||)^k per sample; x, y (B, n_f) -> (B,)."""
    dot = (x * y).sum(dim=1)
    cos_scaled = dot / y.norm(dim=1).clamp_min(1e-12)
    return dot * cos_scaled**k


def unit(v: torch.Tensor) -> torch.Tensor:
    """Rows of ``v`` (B, n) scaled to unit length."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def angular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """180/pi * min(acos(a^T b), acos(-a^T b)) in degrees for rows of unit-normalized ``a``, ``b`` (B, n)."""
    cos = (unit(a) * unit(b)).sum(dim=-1).abs().clamp(max=1.0)
    return torch.rad2deg(torch.acos(cos))
