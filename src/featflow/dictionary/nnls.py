"""Batched non-negative least squares: codes of many inputs against one fixed dictionary (SPEC 1.2).

``z(x) = argmin_{z >= 0} ||a(x) - z D||_2^2 + mu ||z||_2^2`` for all rows of ``A`` at once on the device. With an
overcomplete dictionary (k > d) the plain problem (mu = 0) has many optimal codes and a solver returns an
arbitrary one; the ridge term makes the problem strongly convex, so the code (and every per-feature metric built
on it) is unique. mu is relative to the dictionary's scale: mu = ridge * trace(D D^T) / k. Written by hand:
scipy's ``nnls`` solves one sample per call, and neither torch nor scikit-learn offers a batched solver with D
fixed. :func:`hals_sweeps` is the HALS block update the NMF fit shares.
"""

from __future__ import annotations

import torch


def hals_sweeps(x: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, sweeps: int) -> torch.Tensor:
    """HALS sweeps for ``min_{X >= 0} ||A - X H||_F^2`` given its sufficient statistics, in place.

    Parameters
    ----------
    x : (n, k) current non-negative iterate, updated in place and returned.
    gram : (k, k) ``H H^T``.
    cross : (n, k) ``A H^T``.
    sweeps : passes over the k columns.

    Notes
    -----
    The loop over columns is the algorithm (Gauss-Seidel: column j uses the already updated columns < j);
    each step is one (n, k) x (k,) product over all samples.
    """
    diag = gram.diagonal().clamp_min(torch.finfo(gram.dtype).tiny)
    for _ in range(sweeps):
        for j in range(gram.shape[0]):
            step = (cross[:, j] - x @ gram[:, j]) / diag[j]
            x[:, j] = (x[:, j] + step).clamp_min_(0.0)
    return x


def ridge_mu(gram: torch.Tensor, ridge: float) -> torch.Tensor:
    """The absolute ridge weight mu = ridge * trace(D D^T) / k (1 * ridge for unit-norm atoms)."""
    if ridge < 0:
        raise ValueError(f"complexity.dictionary.code_ridge {ridge}: expected >= 0")
    return ridge * gram.diagonal().mean()


def nnls_codes(
    a: torch.Tensor,
    dictionary: torch.Tensor,
    iterations: int = 300,
    tol: float = 1e-7,
    chunk: int = 65536,
    ridge: float = 0.0,
) -> torch.Tensor:
    """Non-negative codes of every row of ``a`` against a fixed ``dictionary``.

    Accelerated projected gradient (FISTA with O'Donoghue-Candes adaptive restart, per sample) over all
    samples at once: each iteration is one (n, k) x (k, k) product, so it runs at matrix-multiply speed on the
    device. HALS sweeps converge slowly on overcomplete, coherent dictionaries (all atoms >= 0).

    Parameters
    ----------
    a : (n, d) inputs.
    dictionary : (k, d) atoms (rows).
    iterations : maximal iterations; stops earlier when the relative change of the codes falls below ``tol``.
    chunk : samples per block, bounding memory at about 4 (chunk, k) arrays.
    ridge : mu relative to the dictionary's scale (see :func:`ridge_mu`); > 0 makes the codes unique.

    Returns
    -------
    (n, k) codes >= 0, same dtype and device as ``a``.
    """
    if a.ndim != 2 or dictionary.ndim != 2 or a.shape[1] != dictionary.shape[1]:
        raise ValueError(
            f"nnls_codes: expected a (n, d) and dictionary (k, d), got {tuple(a.shape)} and {tuple(dictionary.shape)}"
        )
    if iterations < 1:
        raise ValueError(f"nnls_codes: iterations {iterations}, expected >= 1")
    dictionary = dictionary.to(a)
    gram = dictionary @ dictionary.T
    gram = gram + ridge_mu(gram, ridge) * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    lipschitz = torch.linalg.eigvalsh(gram.double())[-1].to(a.dtype).clamp_min(torch.finfo(a.dtype).tiny)
    blocks = [
        _fista(a[s : s + chunk] @ dictionary.T, gram, lipschitz, iterations, tol) for s in range(0, a.shape[0], chunk)
    ]
    return torch.cat(blocks) if blocks else a.new_zeros((0, dictionary.shape[0]))


def _fista(
    cross: torch.Tensor, gram: torch.Tensor, lipschitz: torch.Tensor, iterations: int, tol: float
) -> torch.Tensor:
    """FISTA for ``min_{X >= 0} 1/2 tr(X G X^T) - tr(X C^T)`` (rows independent), with per-row restart."""
    x = (cross / gram.diagonal().clamp_min(torch.finfo(cross.dtype).tiny)).clamp_min_(0.0) / gram.shape[0]
    y = x.clone()
    t = torch.ones(cross.shape[0], 1, dtype=cross.dtype, device=cross.device)
    for _ in range(iterations):
        grad = y @ gram - cross
        x_new = (y - grad / lipschitz).clamp_min_(0.0)
        step = x_new - x
        # Restart the momentum of rows where it points uphill (gradient scheme of O'Donoghue & Candes 2015).
        uphill = (grad * step).sum(1, keepdim=True) > 0
        t = torch.where(uphill, torch.ones_like(t), t)
        t_new = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = x_new + ((t - 1.0) / t_new) * step
        change = step.norm() / x_new.norm().clamp_min(torch.finfo(cross.dtype).tiny)
        x, t = x_new, t_new
        if change < tol:
            break
    return x
