"""Critical space by co-kernel approximation (Algorithm 1 of the paper) and the nested-interval search over rho.

Written by hand (no library merges subspaces this way). Principal vectors follow Knyazev & Argentati (2002):
the SVD of Q_U^T Q_V; pairs with a principal angle above 45 degrees are dropped and the rest interpolated by
SLERP with t = w_V / (w_U + w_V), the share of samples already merged into V.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def sample_cokernels(gram: torch.Tensor, rho: float) -> list[torch.Tensor]:
    """S_i: left singular vectors of Dy^(i) with singular value < rho ||Dy^(i)||_2, from G_i = Dy Dy^T.

    gram (n, n_f, n_f) -> list of n bases (n_f, d_i) with orthonormal columns.
    """
    vals, vecs = torch.linalg.eigh(gram.double())
    sing = vals.clamp_min(0).sqrt()
    small = sing < rho * sing[:, -1:]
    return [vecs[i][:, small[i]] for i in range(gram.shape[0])]


def slerp(p: torch.Tensor, q: torch.Tensor, theta: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of unit columns p, q (n_f, m) with angles theta (m,) at t in [0, 1]."""
    sin = torch.sin(theta)
    tiny = sin < 1e-8  # (nearly) equal vectors: linear interpolation is exact to first order
    wp = torch.where(tiny, 1 - t, torch.sin((1 - t) * theta) / torch.where(tiny, 1.0, sin))
    wq = torch.where(tiny, t, torch.sin(t * theta) / torch.where(tiny, 1.0, sin))
    out = p * wp + q * wq
    return out / out.norm(dim=0, keepdim=True).clamp_min(1e-12)


def merge(
    qu: torch.Tensor, wu: float, qv: torch.Tensor, wv: float, max_angle: float = 45.0
) -> tuple[torch.Tensor, float]:
    """Weighted approximate intersection of span(qu) (n_f, a) and span(qv) (n_f, b); returns (basis, weight)."""
    if qu.shape[1] == 0 or qv.shape[1] == 0:
        return qu[:, :0], wu + wv
    a, cos, bh = torch.linalg.svd(qu.T @ qv, full_matrices=False)
    pu, pv = qu @ a, qv @ bh.T
    theta = torch.acos(cos.clamp(-1.0, 1.0))
    keep = theta <= math.radians(max_angle)
    merged = slerp(pu[:, keep], pv[:, keep], theta[keep], wv / (wu + wv))
    return merged, wu + wv


def cokernel(gram: torch.Tensor, rho: float) -> torch.Tensor:
    """Algorithm 1: merge the sample co-kernels pairwise (first in, first out) until one space U is left."""
    queue = [(s, 1.0) for s in sample_cokernels(gram, rho)]
    while len(queue) > 1:
        (qu, wu), (qv, wv) = queue.pop(0), queue.pop(0)
        queue.append(merge(qu, wu, qv, wv))
    return queue[0][0]


def complement(u: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis (n_f, n_f - d) of the orthogonal complement of span(u), u (n_f, d) orthonormal."""
    q, _ = torch.linalg.qr(u, mode="complete")
    return q[:, u.shape[1] :]


@dataclass
class CriticalSpace:
    """A critical space C = U^perp found at threshold ``rho``: basis (n_f, dim) with orthonormal columns."""

    rho: float
    basis: torch.Tensor

    @property
    def dim(self) -> int:
        return int(self.basis.shape[1])


def critical_spaces(
    gram: torch.Tensor, rho_min: float = 1e-6, rho_max: float = 0.999, grid: int = 9, log10_tol: float = 0.02
) -> list[CriticalSpace]:
    """Every distinct critical space over rho in [rho_min, rho_max], by nested intervals in log10(rho).

    A coarse grid is refined by bisection wherever dim C differs at the ends of an interval, until the
    interval is shorter than ``log10_tol``; returns one space per distinct dimension (the first rho that
    gives it), largest dimension first. gram: Dy Dy^T of the samples (n, n_f, n_f).
    """
    if not 0 < rho_min < rho_max < 1:
        raise ValueError(f"ifv.critical_space: need 0 < rho_min < rho_max < 1, got {rho_min}, {rho_max}")
    cache: dict[float, CriticalSpace] = {}

    def at(log_rho: float) -> CriticalSpace:
        if log_rho not in cache:
            rho = 10.0**log_rho
            cache[log_rho] = CriticalSpace(rho, complement(cokernel(gram, rho)).float())
        return cache[log_rho]

    points = torch.linspace(math.log10(rho_min), math.log10(rho_max), grid).tolist()
    stack = list(zip(points[:-1], points[1:], strict=True))
    while stack:
        lo, hi = stack.pop()
        if at(lo).dim != at(hi).dim and hi - lo > log10_tol:
            mid = 0.5 * (lo + hi)
            stack += [(lo, mid), (mid, hi)]
    found: dict[int, CriticalSpace] = {}
    for log_rho in sorted(cache):
        space = cache[log_rho]
        found.setdefault(space.dim, space)
    return sorted(found.values(), key=lambda s: -s.dim)


SELECTION_RULES = ("paper", "chance")


def select_space(median_angle: torch.Tensor, median_chance: torch.Tensor, dims: torch.Tensor) -> dict[str, int]:
    """Index of the space each selection rule picks among candidate spaces (R^{n_f} and Algorithm 1's), from the
    median projected angle of IFV's predictions to the targets with known objective (m,), the same median for a
    random objective (m,) and the spaces' dimensions (m,).

    ``paper``: the best (smallest) median projected angle, the paper's practice (Sec. 3.5). ``chance``
    (featflow's): the median angle over the random objective's median, which discounts how much of the angle a
    smaller space removes by itself. Both skip spaces of dim < 2, where the prediction is the space's only
    direction and therefore trivially exact. The paper had two candidates (dims 9 and 8); with many smaller
    spaces its rule favours the smallest, whose every prediction is nearly exact.
    """
    allowed = dims >= 2
    if not allowed.any():
        raise ValueError(f"ifv: no candidate space of dim >= 2 among dims {dims.tolist()}")
    ratio = median_angle / median_chance.clamp_min(1e-9)
    return {
        "paper": int(torch.where(allowed, median_angle, torch.inf).argmin()),
        "chance": int(torch.where(allowed, ratio, torch.inf).argmin()),
    }
