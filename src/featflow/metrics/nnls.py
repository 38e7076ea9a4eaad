"""Batched non-negative least squares: codes of many inputs against one fixed dictionary (SPEC 1.2; a shared unit:
the complexity branch encodes with it, the pictures of features (featflow.fv.atoms) differentiate through it).

``z(x) = argmin_{z >= 0} ||a(x) - z D||_2^2 + mu ||z||_2^2`` for all rows of ``A`` at once on the device. With an
overcomplete dictionary (k > d) the plain problem (mu = 0) has many optimal codes and a solver returns an
arbitrary one; the ridge term makes the problem strongly convex, so the code (and every per-feature metric built
on it) is unique. mu is relative to the dictionary's scale: mu = ridge * trace(D D^T) / k. Written by hand:
scipy's ``nnls`` solves one sample per call, and neither torch nor scikit-learn offers a batched solver with D
fixed.

The solver stops per sample on a measured optimality certificate, a Fenchel duality gap (see :func:`duality_gap`):
a sample is done when ``gap / F(z) <= tol``, which bounds its relative objective gap ``(F(z) - F*) / F(z)``. Done
samples leave the working set, so the slow tail costs only its own rows.

:func:`hals_rows` is the blocked HALS update the NMF fit uses (exact Gauss-Seidel HALS, matrix-multiply bound).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

FORMS = ("auto", "gram", "dictionary")
_COMPACT = 0.9  # gather the working set once its rows still running are <= this fraction of it


def hals_block(k: int) -> int:
    """Columns per block of :func:`hals_rows`: 32 at k <= 512 up to 128 at k >= 2048 (measured on one CPU
    thread; a larger block moves work from the rank-1 in-block updates to one matrix product per block)."""
    return min(128, max(32, k // 16))


def hals_rows(
    xt: torch.Tensor, gram: torch.Tensor, cross_t: torch.Tensor, sweeps: int = 1, block: int | None = None
) -> torch.Tensor:
    """Exact HALS sweeps for ``min_{X >= 0} ||A - X H||_F^2`` on the transposed iterate, in place.

    Parameters
    ----------
    xt : (k, n) ``X^T``, contiguous: row j is HALS column j (all samples).
    gram : (k, k) ``H H^T`` (symmetric).
    cross_t : (k, n) ``H A^T``.
    sweeps : passes over the k rows.
    block : rows per block (default :func:`hals_block`).

    Notes
    -----
    Gauss-Seidel, identical to column-by-column HALS up to rounding: per block of b rows the residual
    ``R = C_B - G_B X`` at the block's start is one (b, k) x (k, n) matrix product; inside the block row j's
    update ``x_j <- max(0, x_j + R_j / G_jj)`` first corrects R_j by the block's earlier moves (one (n, i) x (i,)
    product). A sweep costs one (k, k) x (k, n) product plus b^2 n / 2 per block: matrix-multiply bound, where the
    plain loop is k matrix-vector products over the whole iterate (memory bound).
    """
    k, n = xt.shape
    block = min(block or hals_block(k), k)
    # Rows scaled by 1 / G_jj and the iterate negated (u = -x): the step of row j is
    # delta_j = max(R'_j - G'_{j,<j} delta_{<j}, u_j) over the block's earlier deltas, and u is updated once per
    # block (row j's own u_j is only read by row j): two launches per row, on views built once per call.
    inv = 1.0 / gram.diagonal().clamp_min(torch.finfo(gram.dtype).tiny)
    scaled = gram * inv[:, None]  # G' = diag(1 / G_jj) G
    scaled_c = cross_t * inv[:, None]
    u = xt.neg_()
    resid = xt.new_empty((block, n))
    delta = xt.new_empty((block, n))
    u_rows, r_rows, d_rows = u.unbind(0), resid.unbind(0), delta.unbind(0)
    d_heads = [delta[:i].T for i in range(block)]
    g_heads = [scaled[j, j - (j % block) : j] for j in range(k)]
    for _ in range(sweeps):
        for s in range(0, k, block):
            b = min(block, k - s)
            torch.addmm(scaled_c[s : s + b], scaled[s : s + b], u, out=resid[:b])  # R' = D^-1 (C - G x)
            torch.maximum(r_rows[0], u_rows[s], out=d_rows[0])
            for i in range(1, b):
                torch.addmv(r_rows[i], d_heads[i], g_heads[s + i], alpha=-1.0, out=d_rows[i])
                torch.maximum(d_rows[i], u_rows[s + i], out=d_rows[i])
            u[s : s + b].sub_(delta[:b])
    return u.neg_()


def hals_sweeps(x: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, sweeps: int) -> torch.Tensor:
    """HALS sweeps for ``min_{X >= 0} ||A - X H||_F^2`` given its sufficient statistics, in place.

    x : (n, k) iterate, updated in place and returned.  gram : (k, k) ``H H^T``.  cross : (n, k) ``A H^T``.
    The work is done by :func:`hals_rows` on the transposes.
    """
    xt = x.T.contiguous()
    hals_rows(xt, gram, cross.T.contiguous(), sweeps)
    x.copy_(xt.T)
    return x


def ridge_mu(gram: torch.Tensor, ridge: float) -> torch.Tensor:
    """The absolute ridge weight mu = ridge * trace(D D^T) / k (1 * ridge for unit-norm atoms)."""
    if ridge < 0:
        raise ValueError(f"complexity.dictionary.code_ridge {ridge}: expected >= 0")
    return ridge * gram.diagonal().mean()


@dataclass(frozen=True)
class CodesReport:
    """How the codes of one call met the tolerance: written as file attributes by the stages (:meth:`attrs`)."""

    tol: float
    max_gap: float  # worst per-sample relative duality gap at return (bounds (F(z) - F*) / F(z))
    unconverged: int  # samples whose gap is still above tol at the iteration cap
    iterations: int  # iterations of the slowest sample
    form: str  # gradient through the k x k Gram ("gram") or through the dictionary ("dictionary")

    @property
    def converged(self) -> bool:
        return self.unconverged == 0

    @classmethod
    def merged(cls, reports: Sequence[CodesReport]) -> CodesReport:
        """One report for codes computed in several calls (row chunks): worst gap, all unconverged samples, the
        slowest sample's iterations."""
        first = reports[0]
        return cls(
            first.tol,
            max(r.max_gap for r in reports),
            sum(r.unconverged for r in reports),
            max(r.iterations for r in reports),
            first.form,
        )

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> CodesReport:
        """The report a file's attributes hold (:meth:`attrs`)."""
        return cls(
            float(attrs["codes_tol"]),
            float(attrs["codes_max_gap"]),
            int(attrs["codes_unconverged"]),
            int(attrs["codes_iterations"]),
            str(attrs["codes_gradient"]),
        )

    def attrs(self) -> dict[str, object]:
        return {
            "codes_converged": bool(self.converged),
            "codes_max_gap": float(self.max_gap),
            "codes_unconverged": int(self.unconverged),
            "codes_iterations": int(self.iterations),
            "codes_tol": float(self.tol),
            "codes_gradient": self.form,
        }


def gradient_form(k: int, d: int, form: str = "auto") -> str:
    """``gram`` (one (n, k) x (k, k) product per iteration, n k^2) when k <= 2 d, else ``dictionary`` (two
    products through D, 2 n k d)."""
    if form not in FORMS:
        raise ValueError(f"nnls_codes: gradient form '{form}', expected one of {FORMS}")
    return form if form != "auto" else ("gram" if k <= 2 * d else "dictionary")


def duality_gap(z: torch.Tensor, g: torch.Tensor, mu: float, row_sums: torch.Tensor | None, d: int) -> torch.Tensor:
    """Per-sample Fenchel duality gap of ``F(z) = ||a - z D||^2 + mu ||z||^2, z >= 0`` (an upper bound on
    ``F(z) - F*``), from the gradient of ``F / 2``, ``g = mu z - q`` with ``q = (a - z D) D^T``.

    mu > 0: dual point ``y = -2 r``; gap ``sum_i (mu z_i - q_i)^2 / mu`` where ``q_i > 0``, ``z_i (mu z_i - 2 q_i)``
    elsewhere, i.e. ``sum_i t_i (2 g_i - t_i) / mu`` with ``t = min(g, mu z)`` (each term >= 0, so no cancellation
    in float32). mu = 0: the dual needs ``D y >= 0``; with non-negative atoms ``y = -2 r + tau 1`` is feasible for
    ``tau = max(0, max_i 2 q_i / (D 1)_i)``, gap ``sum_i z_i (tau (D 1)_i - 2 q_i) + tau^2 d / 4``; ``row_sums`` is
    ``D 1`` (None: atoms with negative entries, no certificate: the gap is inf).
    """
    if mu > 0:
        t = torch.minimum(g, z * mu)
        return torch.linalg.vecdot(t, torch.lerp(t, g, 2.0)) / mu
    if row_sums is None:
        return torch.full((z.shape[0],), math.inf, dtype=z.dtype, device=z.device)
    q = -g
    safe = torch.where(row_sums > 0, row_sums, torch.ones_like(row_sums))
    tau = (2.0 * q / safe).amax(1, keepdim=True).clamp_min(0.0)
    return (z * (tau * row_sums - 2.0 * q)).sum(1) + tau[:, 0].square() * (d / 4.0)


def nnls_codes(
    a: torch.Tensor,
    dictionary: torch.Tensor,
    iterations: int = 1000,
    tol: float = 1e-4,
    chunk: int = 65536,
    ridge: float = 0.0,
    form: str = "auto",
    check_every: int = 10,
) -> torch.Tensor:
    """Non-negative codes of every row of ``a`` against a fixed ``dictionary`` (see :func:`nnls_codes_report`)."""
    return nnls_codes_report(
        a, dictionary, iterations=iterations, tol=tol, chunk=chunk, ridge=ridge, form=form, check_every=check_every
    )[0]


def nnls_codes_report(
    a: torch.Tensor,
    dictionary: torch.Tensor,
    iterations: int = 1000,
    tol: float = 1e-4,
    chunk: int = 65536,
    ridge: float = 0.0,
    form: str = "auto",
    check_every: int = 10,
) -> tuple[torch.Tensor, CodesReport]:
    """Non-negative codes of every row of ``a`` against a fixed ``dictionary``, and how they met ``tol``.

    Accelerated projected gradient (FISTA with O'Donoghue-Candes adaptive restart, per sample) over all
    samples at once: one gradient (one matrix product in the gram form, two through the dictionary) per
    iteration over all samples. Every ``check_every`` iterations the per-sample duality gap
    (:func:`duality_gap`) is measured from that gradient; samples with ``gap / F(z) <= tol`` are done (written
    out) and leave the working set.

    Parameters
    ----------
    a : (n, d) inputs.
    dictionary : (k, d) atoms (rows), non-negative.
    iterations : cap on the iterations of any sample.
    tol : relative duality gap at which a sample stops (0: run to the cap).
    chunk : samples per block, bounding memory at about 6 (chunk, k) arrays.
    ridge : mu relative to the dictionary's scale (see :func:`ridge_mu`); > 0 makes the codes unique.
    form : gradient through the Gram (n k^2 per iteration) or through the dictionary (2 n k d); ``auto``
        picks the cheaper by shape (:func:`gradient_form`).
    check_every : iterations between gap measurements (a measurement costs a few elementwise passes, no
        matrix product: about half an iteration at k 128, a few percent at k >= 1,024).

    Returns
    -------
    (n, k) codes >= 0 (same dtype and device as ``a``) and a :class:`CodesReport`.
    """
    if a.ndim != 2 or dictionary.ndim != 2 or a.shape[1] != dictionary.shape[1]:
        raise ValueError(
            f"nnls_codes: expected a (n, d) and dictionary (k, d), got {tuple(a.shape)} and {tuple(dictionary.shape)}"
        )
    if iterations < 1:
        raise ValueError(f"nnls_codes: iterations {iterations}, expected >= 1")
    if tol < 0:
        raise ValueError(f"complexity.dictionary.code_tol {tol}: expected >= 0")
    k, d = dictionary.shape
    form = gradient_form(k, d, form)
    dictionary = dictionary.to(a)
    small = dictionary @ dictionary.T if k <= d else dictionary.T @ dictionary  # same nonzero eigenvalues
    mu = float(ridge_mu(small, ridge)) * min(k, d) / k  # ridge * trace(D D^T) / k
    lipschitz = float(torch.linalg.eigvalsh(small.double())[-1]) + mu
    solver = _Solver(dictionary, mu, form, max(lipschitz, torch.finfo(a.dtype).tiny), bool((dictionary >= 0).all()))
    out = a.new_zeros((a.shape[0], k))
    worst, unconverged, slowest = 0.0, 0, 0
    for s in range(0, a.shape[0], chunk):
        gap, left, its = solver.run(a[s : s + chunk], out[s : s + chunk], iterations, tol, check_every)
        worst, unconverged, slowest = max(worst, gap), unconverged + left, max(slowest, its)
    return out, CodesReport(float(tol), worst, unconverged, slowest, form)


class _Solver:
    """Accelerated projected gradient for ``min_{z >= 0} 1/2 z G z^T - z c`` per row (G = D D^T + mu I,
    c = a D^T), with per-row restart.

    The gradient is affine in z, so it is formed once per iteration, at the new iterate x: the gradient at the
    extrapolated point ``y = x + b (x - x_prev)`` is the same combination of the two gradients, and the certificate
    at x needs no further matrix product."""

    def __init__(self, dictionary: torch.Tensor, mu: float, form: str, lipschitz: float, nonneg: bool) -> None:
        self.dictionary, self.mu, self.form, self.lipschitz = dictionary, mu, form, lipschitz
        self.row_sums = dictionary.sum(1) if nonneg else None
        k = dictionary.shape[0]
        if form == "gram":
            self.gram = dictionary @ dictionary.T
            self.gram.diagonal().add_(mu)
            self.diag = self.gram.diagonal().clone()
        else:
            self.diag = dictionary.square().sum(1) + mu
        self.diag = self.diag.clamp_min(torch.finfo(dictionary.dtype).tiny) * k

    def gradient(self, x: torch.Tensor, a: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The gradient ``g = x G - c`` of ``F / 2`` at x, and the residual ``a - x D`` where it is formed
        (dictionary form; None in the gram form)."""
        if self.form == "gram":
            return torch.addmm(c, x, self.gram, beta=-1.0), None
        resid = torch.addmm(a, x, self.dictionary, alpha=-1.0)
        return torch.addmm(x, resid, self.dictionary.T, alpha=-1.0, beta=self.mu), resid

    def rel_gap(
        self, x: torch.Tensor, g: torch.Tensor, resid: torch.Tensor | None, c: torch.Tensor, norms: torch.Tensor
    ) -> torch.Tensor:
        """gap / F(x) per row, from the gradient at x (``norms``: ``||a||^2`` per row)."""
        if resid is None:
            objective = norms + torch.linalg.vecdot(x, g - c)  # ||a||^2 - 2 x c + x G x
        else:
            objective = torch.linalg.vecdot(resid, resid) + self.mu * torch.linalg.vecdot(x, x)
        gap = duality_gap(x, g, self.mu, self.row_sums, self.dictionary.shape[1])
        tiny = torch.finfo(x.dtype).tiny
        return torch.where(gap > 0, gap / objective.clamp_min(tiny), torch.zeros_like(gap))

    def run(
        self, a: torch.Tensor, out: torch.Tensor, iterations: int, tol: float, check_every: int
    ) -> tuple[float, int, int]:
        """Solve rows of ``a`` into ``out``; returns (worst relative gap, rows above tol, iterations run).

        Rows written out stay in the working set until it has shrunk by a tenth (:data:`_COMPACT`): gathering the
        state costs about one iteration."""
        c = a @ self.dictionary.T
        norms = a.square().sum(1)
        x = (c / self.diag).clamp_min_(0.0)
        g, resid = self.gradient(x, a, c)
        y, gy = x, g
        t = torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)
        rows = torch.arange(a.shape[0], device=a.device)
        live = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
        worst, left, it = 0.0, 0, 0
        for it in range(1, iterations + 1):
            x_new = torch.add(y, gy, alpha=-1.0 / self.lipschitz).clamp_min_(0.0)
            g_new, resid = self.gradient(x_new, a, c)
            step = x_new.sub(x)
            # Restart the momentum of rows where it points uphill (gradient scheme of O'Donoghue & Candes 2015).
            t = torch.where(torch.linalg.vecdot(gy, step)[:, None] > 0, torch.ones_like(t), t)
            t_new = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
            b, t = (t - 1.0) / t_new, t_new
            y = torch.addcmul(x_new, b, step)
            gy = torch.lerp(g_new, g, b.neg())  # the gradient at y: g_new + b (g_new - g)
            x, g = x_new, g_new
            last = it == iterations
            if it % check_every and not last:
                continue
            gap = self.rel_gap(x, g, resid, c, norms)
            done = live & (gap <= tol) if not last else live
            if bool(done.any()):
                out[rows[done]] = x[done]
                worst = max(worst, float(gap[done].max()))
                live = live & ~done
            if last:
                left = int((gap[done] > tol).sum())
                break
            size = int(live.sum())
            if size == 0:
                break
            if size <= _COMPACT * rows.numel():
                rows, a, c, norms, x, g, y, gy, t = (v[live] for v in (rows, a, c, norms, x, g, y, gy, t))
                live = live[live]
        return worst, left, it
