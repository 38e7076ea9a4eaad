"""Closed-form inverse FV (SPEC 2.3): the objective x* for which a realization is a stationary point.

Everything needs only the Gram matrix G = Dy Dy^T (n, n_f, n_f): M M^T = U^T Z_k G Z_k U.
"""

from __future__ import annotations

import torch

from featflow.fv.objectives import unit
from featflow.fv.spec import StationaritySpec


def z_matrix(y: torch.Tensor, k: int) -> torch.Tensor:
    """Z_k(y) = I - k/(k+1) yhat yhat^T for responses y (n, n_f) -> (n, n_f, n_f)."""
    yhat = unit(y)
    eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    return eye - (k / (k + 1)) * yhat[:, :, None] * yhat[:, None, :]


def feasible_basis(y: torch.Tensor, k: int, critical: torch.Tensor | None) -> torch.Tensor:
    """U (n, n_f, c): orthonormal basis of Im(Z_k(y)^{-1} C_M), Z_k^{-1} = I + k yhat yhat^T.

    ``critical`` is C_M (n_f, c) with orthonormal columns; None means C = R^{n_f} (U = I).
    """
    n, n_f = y.shape
    if critical is None:
        return torch.eye(n_f, dtype=y.dtype, device=y.device).expand(n, n_f, n_f)
    yhat = unit(y)
    c = critical.to(y)
    zinv_c = c[None] + k * yhat[:, :, None] * (yhat @ c)[:, None, :]
    q, _ = torch.linalg.qr(zinv_c)
    return q


def predict(gram: torch.Tensor, y: torch.Tensor, k: int, critical: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted objectives x* (n, n_f): U sigma*, sigma* the eigenvector of M M^T of the smallest eigenvalue.

    gram: Dy Dy^T (n, n_f, n_f); y: responses (n, n_f). Signs fixed so that x*^T y > 0.
    """
    gram, y = gram.double(), y.double()
    z = z_matrix(y, k)
    u = feasible_basis(y, k, critical)
    mmt = u.transpose(1, 2) @ z @ gram @ z @ u
    _, vecs = torch.linalg.eigh(0.5 * (mmt + mmt.transpose(1, 2)))
    x = (u @ vecs[:, :, :1]).squeeze(2)
    sign = torch.sign((x * y).sum(1, keepdim=True))
    return (x * torch.where(sign == 0, 1.0, sign)).float()


def alpha_decomposition(gram: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """alpha_j = mean_i c_{i,j}^2 with x_i = sum_j c_{i,j} v_{i,j}, v_{i,j} the left singular vectors of
    Z_k Dy in ascending order of singular value; returns (n_f,). alpha_1 near 1 means IFV succeeds."""
    z = z_matrix(y.double(), k)
    mmt = z @ gram.double() @ z
    _, vecs = torch.linalg.eigh(0.5 * (mmt + mmt.transpose(1, 2)))
    coeffs = (vecs * unit(targets.double())[:, :, None]).sum(1)
    return (coeffs**2).mean(0).float()


def project_target(x: torch.Tensor, y: torch.Tensor, k: int, critical: torch.Tensor | None) -> torch.Tensor:
    """The paper's projected target x~ (n, n_f): x normalized after Z_k^{-1} C_M C_M^T Z_k x (Sec. 2.2).

    x~ is what IFV can at best recover with critical space C (x up to a shift in (Z_k^{-1} C)^perp); the paper
    scores a prediction against it. ``critical`` None (C = R^{n_f}) returns x itself.
    """
    x, y = x.double(), y.double()
    if critical is None:
        return unit(x)
    c = critical.to(y)
    yhat = unit(y)
    zx = (z_matrix(y, k) @ x[:, :, None]).squeeze(2)
    in_c = (zx @ c) @ c.T
    zinv = in_c + k * yhat * (yhat * in_c).sum(1, keepdim=True)
    return unit(zinv)


def fraction_in_space(x: torch.Tensor, y: torch.Tensor, k: int, critical: torch.Tensor | None) -> torch.Tensor:
    """|v| / (|v| + |w|) for x = v + w, v in Z_k^{-1} C, w orthogonal to it (the point size of the paper's
    Fig. 2b,c): how much of the target the critical space can see. 1 for C = R^{n_f}."""
    x = x.double()
    if critical is None:
        return torch.ones(x.shape[0], dtype=x.dtype)
    u = feasible_basis(y.double(), k, critical.double())
    v = (u @ (u.transpose(1, 2) @ x[:, :, None])).squeeze(2)
    v_norm, w_norm = v.norm(dim=1), (x - v).norm(dim=1)
    return v_norm / (v_norm + w_norm).clamp_min(1e-300)


def stationarity(
    gram: torch.Tensor, y: torch.Tensor, x: torch.Tensor, k: int, critical: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Scale-free checks that realizations are the stationary points IFV presupposes; all (n,).

    ``residual_ratio``: |x~^T Z_k Dy| / s_min(U^T Z_k Dy), x~ the projected target (x itself for C = R^{n_f}),
    U a basis of Z_k^{-1} C: >= 1, and 1 when the target is the direction IFV predicts. ``grad_rel``: the FV
    gradient relative to its largest possible value, |(Z_k x)^T Dy| / (|Z_k x| |Dy|_2) in [0, 1]; 0 at a
    stationary point, whatever the scale of y or Dy.
    """
    gram, y, x = gram.double(), y.double(), unit(x.double())
    z = z_matrix(y, k)
    u = feasible_basis(y, k, None if critical is None else critical.double())
    mmt = u.transpose(1, 2) @ z @ gram @ z @ u
    s_min = torch.linalg.eigvalsh(0.5 * (mmt + mmt.transpose(1, 2)))[:, 0].clamp_min(0).sqrt()
    xt = project_target(x, y, k, critical)
    zx, zxt = (z @ x[:, :, None]).squeeze(2), (z @ xt[:, :, None]).squeeze(2)
    residual = torch.einsum("ni,nij,nj->n", zxt, gram, zxt).clamp_min(0).sqrt()
    grad = torch.einsum("ni,nij,nj->n", zx, gram, zx).clamp_min(0).sqrt()
    dy_norm = torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0).sqrt()
    return {
        "residual_ratio": (residual / s_min.clamp_min(1e-300)).float(),
        "grad_rel": (grad / (zx.norm(dim=1) * dy_norm).clamp_min(1e-300)).float(),
    }


def stationary_flags(check: dict[str, torch.Tensor], limits: StationaritySpec) -> dict[str, torch.Tensor]:
    """Two separate answers from :func:`stationarity` (n,) bool each.

    ``stationary``: ``grad_rel`` <= ``max_grad_rel``, FV's own first-order condition (it reads the objective FV
    optimized, never IFV's answer), what IFV presupposes. ``recovers``: ``residual_ratio`` <=
    ``max_residual_ratio``, "IFV recovers x": the target is as near stationary as the best objective IFV can
    return. It needs the true target, so it cannot tell stationarity where the objective is unknown (IFV's
    purpose), and it does not count as stationarity: it passes realizations that FV left after 10 Adam steps.
    """
    return {
        "stationary": check["grad_rel"] <= limits.max_grad_rel,
        "recovers": check["residual_ratio"] <= limits.max_residual_ratio,
    }
