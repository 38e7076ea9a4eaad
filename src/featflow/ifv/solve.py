"""Closed-form inverse FV (SPEC 2.3): the objective x* for which a realization is a stationary point.

Everything needs only the Gram matrix G = Dy Dy^T (n, n_f, n_f): M M^T = U^T Z_k G Z_k U.
"""

from __future__ import annotations

import torch

from featflow.fv.objectives import unit


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
