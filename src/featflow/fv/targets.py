"""Non-negative unit targets of a given Hoyer sparsity, plus the canonical vectors (SPEC 2.1)."""

from __future__ import annotations

import math

import torch


def hoyer(x: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity (sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1) of rows of ``x`` (B, n) -> (B,)."""
    n = x.shape[-1]
    ratio = x.abs().sum(-1) / x.norm(dim=-1).clamp_min(1e-12)
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def sparseness_projection(x: torch.Tensor, l1: torch.Tensor) -> torch.Tensor:
    """Hoyer's (2004) exact projection: the closest non-negative s with |s|_1 = l1, |s|_2 = 1.

    Written by hand (no library provides it), batched over rows with a mask per row; x (B, n), l1 (B,).
    Each iteration zeroes at least one more coordinate of the unfinished rows, so it ends within n steps.
    """
    batch, n = x.shape
    s = x + (l1[:, None] - x.sum(1, keepdim=True)) / n
    zero = torch.zeros_like(s, dtype=torch.bool)
    done = torch.zeros(batch, dtype=torch.bool, device=x.device)
    for _ in range(n + 1):
        free = (~zero).sum(1, keepdim=True).clamp_min(1)
        m = torch.where(zero, 0.0, l1[:, None] / free)
        d = s - m
        # Solve |m + a d|^2 = 1 for a >= 0: a^2 |d|^2 + 2 a m.d + |m|^2 - 1 = 0.
        qa = (d * d).sum(1)
        qb = 2 * (m * d).sum(1)
        qc = (m * m).sum(1) - 1
        disc = (qb**2 - 4 * qa * qc).clamp_min(0)
        alpha = (-qb + disc.sqrt()) / (2 * qa.clamp_min(1e-30))
        cand = m + alpha[:, None] * d
        s = torch.where(done[:, None], s, cand)
        negative = (s < 0) & ~done[:, None]
        done = done | ~negative.any(1)
        if bool(done.all()):
            return s.clamp_min(0)
        zero = zero | negative
        s = torch.where(zero, 0.0, s)
        c = (s.sum(1, keepdim=True) - l1[:, None]) / (~zero).sum(1, keepdim=True).clamp_min(1)
        s = torch.where(zero | done[:, None], s, s - c)
    raise RuntimeError("sparseness_projection did not converge")  # unreachable by the argument above


def sample_targets(n: int, n_f: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` non-negative unit targets (n, n_f) with Hoyer sparsity drawn from U[0, 1], and those sparsities.

    x0 is uniform on the sphere (a normalized Gaussian), folded to the non-negative orthant by |x0|, then
    projected to the target sparsity.
    """
    if n_f < 2:
        raise ValueError(f"fv.n_f = {n_f}: sparse targets need at least 2 features")
    sparsity = torch.rand(n, generator=generator, dtype=torch.float64)
    x0 = torch.randn(n, n_f, generator=generator, dtype=torch.float64).abs()
    x0 = x0 / x0.norm(dim=1, keepdim=True)
    l1 = math.sqrt(n_f) - sparsity * (math.sqrt(n_f) - 1)
    x = sparseness_projection(x0, l1)
    return x.float(), sparsity.float()


def make_targets(
    n_sparse: int, n_f: int, include_canonical: bool, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Sparse targets then (optionally) the canonical vectors e_1..e_n_f.

    Returns ``targets`` (n, n_f), ``sparsity`` (n,) (the drawn Hoyer sparsity, 1 for canonical vectors) and
    ``canonical`` (n,) bool.
    """
    x, sparsity = sample_targets(n_sparse, n_f, generator)
    canonical = torch.zeros(n_sparse, dtype=torch.bool)
    if include_canonical:
        x = torch.cat([x, torch.eye(n_f)])
        sparsity = torch.cat([sparsity, torch.ones(n_f)])
        canonical = torch.cat([canonical, torch.ones(n_f, dtype=torch.bool)])
    if x.shape[0] == 0:
        raise ValueError("fv: n_sparse = 0 and include_canonical = false leave no targets")
    return {"targets": x, "sparsity": sparsity, "canonical": canonical}
