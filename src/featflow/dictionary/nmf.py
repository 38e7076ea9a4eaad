"""Non-negative matrix factorization ``A ~ Z D`` (Z, D >= 0) in PyTorch on the device (SPEC 1.2).

Two fits with the same result type: :func:`fit_nmf` (HALS on the whole matrix, the setting of Cichocki & Phan
2009 and scikit-learn's ``cd`` solver; or multiplicative updates, Lee & Seung 2001) and :func:`fit_nmf_online`
(minibatch NMF after Mairal et al. 2010: codes per batch with D fixed, running sufficient statistics
``Z^T Z`` and ``Z^T A``, HALS steps on D) for activations that do not fit in memory. torchnmf (beta-divergence
multiplicative updates) and overcomplete (HALS, MU and ANLS on an in-memory matrix) fit NMF in torch too; featflow
keeps its own because the online fit streams the activations from HDF5 through running sufficient statistics,
which neither offers, and because the codes of new inputs must come from the very solver (and penalty) of the fit's
codes; scikit-learn's MiniBatchNMF streams but runs on the CPU only. The tests check the whole-matrix fit against
scikit-learn's at the same initialization.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from featflow.dictionary.base import FitContext, Method, Rows
from featflow.dictionary.spec import DictionarySpec
from featflow.metrics.nnls import CodesReport, hals_block, hals_rows, nnls_codes, nnls_codes_report

log = logging.getLogger(__name__)

SOLVERS = ("hals", "mu")
_EPS = 1e-12


@dataclass
class NMFDictionary:
    """A dictionary coded by ridge NNLS: atoms ``D`` (k, d) with unit-norm rows (non-negative for NMF, signed for
    Semi-NMF), and the :class:`~featflow.dictionary.base.Dictionary` contract.

    ``encode`` gives the non-negative codes of new activations (batched ridge NNLS with D fixed, the same
    problem the fit's codes solve, stopped per sample at relative duality gap ``code_tol`` with at most
    ``code_iterations`` iterations), ``decode`` maps codes back to activation space.
    """

    atoms: torch.Tensor
    code_iterations: int = 1000
    ridge: float = 0.0
    code_tol: float = 1e-4

    @property
    def k(self) -> int:
        return self.atoms.shape[0]

    @property
    def signed_atoms(self) -> bool:
        return bool((self.atoms < 0).any())

    @property
    def signed_codes(self) -> bool:
        return False

    def state(self) -> dict[str, np.ndarray]:
        return {"atoms": self.atoms.cpu().numpy()}

    def to(self, device: torch.device | str) -> NMFDictionary:
        return dataclasses.replace(self, atoms=self.atoms.to(device))

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) activations -> (n, k) codes >= 0."""
        return self.encode_report(a)[0]

    def encode_report(self, a: torch.Tensor) -> tuple[torch.Tensor, CodesReport]:
        """Codes and how they met the tolerance; warns when some sample did not reach it within the cap."""
        codes, report = nnls_codes_report(
            a.to(self.atoms), self.atoms, self.code_iterations, self.code_tol, ridge=self.ridge
        )
        if not report.converged and self.code_tol > 0:
            log.warning(
                "codes: %d of %d samples above the relative duality gap %g after %d iterations (worst %.2e); "
                "raise complexity.dictionary.code_iterations",
                report.unconverged,
                a.shape[0],
                self.code_tol,
                report.iterations,
                report.max_gap,
            )
        return codes, report

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, k) codes -> (n, d) reconstructions ``z D``."""
        return z.to(self.atoms) @ self.atoms


@dataclass
class NMFResult:
    """Atoms (k, d), unit-norm rows; codes (n, k) of the fitted data (rescaled to match); error trace."""

    atoms: torch.Tensor
    codes: torch.Tensor
    errors: list[float]


def relative_error(a: torch.Tensor, codes: torch.Tensor, atoms: torch.Tensor) -> float:
    """``||A - Z D||_F / ||A||_F``."""
    return float((a - codes @ atoms).norm() / a.norm().clamp_min(_EPS))


def _check(a: torch.Tensor, k: int) -> None:
    if a.ndim != 2:
        raise ValueError(f"nmf: expected activations (n, d), got shape {tuple(a.shape)}")
    if k < 1:
        raise ValueError(f"nmf: k {k}, expected >= 1")
    if bool((a < 0).any()):
        raise ValueError(f"nmf: activations must be non-negative (min {float(a.min()):.3g}); pick a layer after a ReLU")


def _init(a: torch.Tensor, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random init scaled like scikit-learn's ``init='random'``: entries ~ |N(0, 1)| * sqrt(mean(A) / k)."""
    scale = float(a.mean().clamp_min(_EPS) / k) ** 0.5
    z = torch.randn(a.shape[0], k, generator=generator, device=a.device, dtype=a.dtype).abs_() * scale
    d = torch.randn(k, a.shape[1], generator=generator, device=a.device, dtype=a.dtype).abs_() * scale
    return z, d


def _normalize(codes: torch.Tensor, atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm atoms, codes rescaled so that ``Z D`` is unchanged (dead atoms stay zero)."""
    norms = atoms.norm(dim=1)
    safe = torch.where(norms > _EPS, norms, torch.ones_like(norms))
    return codes * safe, atoms / safe[:, None]


def _inner_sweeps(precompute: float, sweep: float, alpha: float = 0.5) -> int:
    """Gillis & Glineur's (2012) cap on repeated HALS sweeps of one factor: ``1 + alpha * rho``, rho the cost of
    the factor's sufficient statistics relative to one sweep (both in flops, a sweep charged a fixed
    per-row overhead of python-level steps)."""
    return 1 + int(alpha * precompute / sweep)


def fit_nmf(
    a: torch.Tensor,
    k: int,
    iterations: int = 200,
    solver: str = "hals",
    tol: float = 1e-5,
    generator: torch.Generator | None = None,
    ridge: float = 0.0,
    callback: Callable[[int, torch.Tensor, torch.Tensor], bool] | None = None,
    extrapolate: bool | None = None,
) -> NMFResult:
    """Fit ``A ~ Z D`` on a matrix held in (device) memory, in the dtype of ``a`` (float32 is enough).

    With ``ridge`` > 0 the objective is ``F = ||A - Z D||_F^2 + mu ||Z||_F^2`` with unit-norm atoms, mu =
    ``ridge`` as in :func:`featflow.metrics.nnls.ridge_mu` (the codes of new inputs then solve the same problem).
    The fit minimizes its scale-invariant form ``||A - Z D||^2 + mu sum_j ||z_j||^2 ||d_j||^2`` (equal to F at
    unit atoms): every HALS block step, on the codes and on the atoms alike, is the exact minimizer of F in its
    block (the Gram's diagonal scaled by ``1 + ridge``), and renormalizing the atoms leaves F unchanged, so F
    never increases (without the ``ridge`` on the atoms' diagonal the atom update ignored that the
    renormalization moves the penalty, and F was not monotone).

    ``hals`` is accelerated HALS (Gillis & Glineur 2012) with blocked, matrix-multiply-bound sweeps
    (:func:`featflow.metrics.nnls.hals_rows`): per iteration the Gram and cross products of one factor are
    computed once, then its sweeps are repeated while they are cheap relative to those products (at most
    ``1 + 0.5 rho`` sweeps, stopping when a sweep moves the factor by less than 10% of the first sweep's move).
    With ``extrapolate`` each factor's update is extrapolated, ``[X + beta (X - X_prev)]_+``, with the
    restart rule of Ang & Gillis (2019, "HER"): beta grows by 1.05 while the objective decreases; when it
    rises the extrapolation is dropped and beta shrinks by 1.5 (its ceiling set to the failed beta). Default:
    on where it reached a given error in less CPU time than plain accelerated HALS (bench/bench_nmf.py).

    The objective is read off the products the atom update forms anyway, ``||A||^2 - 2 <Z^T A, D> +
    <Z^T Z, D D^T>`` (a k x d and a k x k inner product, in float64), never from an n x d residual; the
    error trace and the ``tol`` test use it. The codes are held transposed, (k, n), in the dtype of ``a``.

    Parameters
    ----------
    a : (n, d) non-negative activations.
    k : number of atoms (k > d: overcomplete).
    iterations : maximal outer iterations (one update of Z then of D).
    solver : ``hals`` (accelerated HALS) or ``mu`` (multiplicative updates).
    tol : stop when the lowest ``sqrt(F) / ||A||`` (the relative error at ridge 0) of 10 iterations improves on
        the previous 10's by less than ``tol`` (relative).
    ridge : mu relative to the atoms' scale; 0 is plain NMF.
    callback : called after every iteration with (iteration, codes (n, k), atoms (k, d)); True stops the fit.
    extrapolate : HER extrapolation of the HALS updates; None: :func:`default_extrapolation` by shape. False
        with ridge 0 is plain Gauss-Seidel HALS (scikit-learn's cd from the same start).

    Returns
    -------
    NMFResult with unit-norm atoms; its codes are a transposed view of the (k, n) iterate; ``errors`` the
    relative error every 10 iterations (Gram form) and at the end (exact).
    """
    _check(a, k)
    if solver not in SOLVERS:
        raise ValueError(f"nmf: solver '{solver}', expected one of {SOLVERS}")
    if ridge < 0:
        raise ValueError(f"complexity.dictionary.code_ridge {ridge}: expected >= 0")
    generator = generator or torch.Generator(device=a.device).manual_seed(0)
    z, d = _init(a, k, generator)
    if ridge > 0:
        z, d = _normalize(z, d)
    zt = z.T.contiguous()
    del z
    n, dim = a.shape
    block = hals_block(k)
    sweeps_z, sweeps_d = _sweeps(n, dim, k)
    norm2 = float(torch.linalg.vector_norm(a, dtype=torch.float64)) ** 2
    errors: list[float] = []
    roots, lowest = [math.inf], math.inf  # sqrt(lowest F / ||A||^2) of every 10 iterations (relative error at ridge 0)
    if extrapolate is None:
        extrapolate = default_extrapolation(n, dim, k)
    her = _HER() if solver == "hals" and extrapolate else None
    # HER state: (zt, d) is the current pair (returned); (z_prev, d_hat) the previous HALS output of Z and the
    # extrapolated atoms the next Z update uses. Without HER, z_prev is unused and d_hat is d.
    z_prev = zt.clone() if her else zt
    d_hat = d.clone() if her else d
    gram = d_hat @ d_hat.T
    it = 0
    for it in range(1, iterations + 1):
        gram.diagonal().mul_(1.0 + ridge)  # the ridge mu ||z_j||^2 ||d_j||^2 (mu I at unit atoms)
        cross_t = d_hat @ a.T
        if solver == "mu":
            zt.mul_(cross_t / (gram @ zt).clamp_min(_EPS))
        else:
            _accelerated(zt, gram, cross_t, sweeps_z, block)
        del cross_t
        if her is not None:  # zt becomes [Z + beta (Z - Z_prev)]_+, z_prev the new Z
            z_prev.mul_(-her.beta).add_(zt, alpha=1.0 + her.beta).clamp_min_(0.0)
            zt, z_prev = z_prev, zt
        zz, za = _gram_t(zt), zt @ a
        zz.diagonal().mul_(1.0 + ridge)  # exact block minimizer of F in each atom
        if solver == "mu":
            d.mul_(za / (zz @ d).clamp_min(_EPS))
        elif her is None:
            _accelerated(d, zz, za, sweeps_d, block)
        else:  # D from the extrapolated atoms against the extrapolated codes; d then holds the new D
            d_new = d_hat
            _accelerated(d_new, zz, za, sweeps_d, block)
            dead = d_new.amax(1) <= 0  # an overshooting extrapolation can zero an atom: keep its previous row
            if bool(dead.any()):
                d_new[dead] = d[dead]
            d_hat = d.mul_(-her.beta).add_(d_new, alpha=1.0 + her.beta).clamp_min_(0.0)
            d = d_new
        dd = d @ d.T
        objective, residual = _objective(norm2, za, zz, d, dd, ridge)
        lowest = min(lowest, objective)  # HER's rejected steps raise F: the tol test compares the windows' best
        if ridge > 0:
            scale = _normalize_t(zt, d, z_prev, d_hat) if her else _normalize_t(zt, d)
            dd.div_(scale[:, None] * scale[None, :])
        if her is not None and not her.accept(objective):
            zt.copy_(z_prev)  # drop the extrapolation: the next update starts from the plain HALS output
            d_hat = d.clone()
        gram = dd if her is None else d_hat @ d_hat.T
        if callback is not None and callback(it, zt.T, d):
            break
        if it % 10 == 0 or it == iterations:
            errors.append(math.sqrt(max(residual, 0.0) / max(norm2, _EPS)))
            roots.append(math.sqrt(max(lowest, 0.0) / max(norm2, _EPS)))
            lowest = math.inf
            if roots[-2] - roots[-1] < tol * roots[-2]:
                break
    _normalize_t(zt, d)
    errors.append(relative_error(a, zt.T, d))
    log.info("nmf (%s): k=%d, %d iterations, relative error %.4f", solver, k, it, errors[-1])
    return NMFResult(d, zt.T, errors)


def default_extrapolation(n: int, d: int, k: int) -> bool:
    """Whether :func:`fit_nmf` extrapolates by default: where the atoms get one HALS sweep per iteration. There
    HER reached a given objective in less CPU time than plain accelerated HALS (n 2,000, d 64, k 128, with the
    ridge and without); where the products ``Z^T Z``, ``Z^T A`` cost several atom sweeps and the accelerated HALS
    repeats them, HER's restarts lost at equal CPU time (n 10,000, d 512, k 2,048; bench/bench_nmf.py)."""
    return _sweeps(n, d, k)[1] == 1


def _sweeps(n: int, d: int, k: int) -> tuple[int, int]:
    """Repeated HALS sweeps per iteration of the codes and of the atoms (:func:`_inner_sweeps`)."""
    block = hals_block(k)
    overhead = float(2**20)  # flops charged per row step of a sweep (python-level launches)
    codes = _inner_sweeps(n * d * k + k * k * d, n * k * (k + block) + k * overhead)
    atoms = _inner_sweeps(n * k * k + n * k * d, d * k * (k + block) + k * overhead)
    return codes, atoms


def _gram_t(xt: torch.Tensor, blocks: int = 4, min_k: int = 512) -> torch.Tensor:
    """``xt @ xt.T`` (k, k) from the block columns on and below the diagonal, mirrored: ~(b + 1) / 2b of the
    products of the full matrix product (torch has no SYRK); the plain product below ``min_k``."""
    k = xt.shape[0]
    if k < min_k:
        return xt @ xt.T
    out = xt.new_empty((k, k))
    edges = [k * i // blocks for i in range(blocks + 1)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        torch.mm(xt[lo:], xt[lo:hi].T, out=out[lo:, lo:hi])
        out[lo:hi, hi:] = out[hi:, lo:hi].T
    return out


def _objective(
    norm2: float, za: torch.Tensor, zz: torch.Tensor, d: torch.Tensor, dd: torch.Tensor, ridge: float
) -> tuple[float, float]:
    """(F, ||A - Z D||^2) from the products already formed: ``||A||^2 - 2 <Z^T A, D> + <Z^T Z, D D^T>``; ``zz``
    carries the ridge on its diagonal (``1 + ridge`` times ``Z^T Z``), so ``<zz, D D^T>`` includes the penalty."""
    cross = float((za.double() * d.double()).sum())
    quad = float((zz.double() * dd.double()).sum())
    penalty = ridge / (1.0 + ridge) * float((zz.diagonal().double() * dd.diagonal().double()).sum())
    objective = norm2 - 2.0 * cross + quad
    return objective, objective - penalty


class _HER:
    """Extrapolation weight of Ang & Gillis (2019): beta0 0.5, growth 1.05, ceiling growth 1.01, cut 1.5."""

    def __init__(self) -> None:
        self.beta, self.ceiling, self.last = 0.5, 1.0, math.inf

    def accept(self, objective: float) -> bool:
        ok = objective <= self.last
        if ok:
            self.beta = min(self.ceiling, 1.05 * self.beta)
            self.ceiling = min(1.0, 1.01 * self.ceiling)
        else:
            self.ceiling, self.beta = self.beta, self.beta / 1.5
        self.last = objective
        return ok


def _accelerated(xt: torch.Tensor, gram: torch.Tensor, cross_t: torch.Tensor, sweeps: int, block: int) -> None:
    """Up to ``sweeps`` HALS sweeps, stopping once a sweep moves ``xt`` by < 10% of the first sweep's move."""
    first = None
    for _ in range(sweeps):
        before = xt.clone() if sweeps > 1 else None
        hals_rows(xt, gram, cross_t, 1, block)
        if before is None:
            return
        move = float(before.sub_(xt).norm())
        if first is None:
            first = move
        elif move <= 0.1 * first:
            return


def _normalize_t(zt: torch.Tensor, atoms: torch.Tensor, *more: torch.Tensor) -> torch.Tensor:
    """:func:`_normalize` on transposed codes (k, n), in place; ``more`` (codes, atoms) pairs get the same scale.
    Returns the atoms' former norms (1 for dead atoms)."""
    norms = atoms.norm(dim=1)
    safe = torch.where(norms > _EPS, norms, torch.ones_like(norms))
    zt.mul_(safe[:, None])
    atoms.div_(safe[:, None])
    for extra_z, extra_d in zip(more[::2], more[1::2], strict=True):
        extra_z.mul_(safe[:, None])
        extra_d.div_(safe[:, None])
    return safe


def _hals_atoms(atoms: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, sweeps: int = 1) -> torch.Tensor:
    """HALS sweeps on the atoms for ``min_{D >= 0} ||A - Z D||`` from ``Z^T Z`` (k, k) and ``Z^T A`` (k, d)."""
    atoms = atoms.contiguous().clone()
    hals_rows(atoms, gram, cross.contiguous(), sweeps)
    return atoms


def fit_nmf_online(
    batches: Callable[[], Iterable[torch.Tensor]],
    k: int,
    epochs: int = 5,
    code_iterations: int = 100,
    forget: float = 0.9,
    generator: torch.Generator | None = None,
    ridge: float = 0.0,
) -> torch.Tensor:
    """Minibatch (online) NMF over data streamed in batches; memory O(k^2 + k d), independent of n.

    Parameters
    ----------
    batches : called once per epoch, yields (b, d) non-negative tensors on the device.
    k : number of atoms.
    epochs : passes over the data.
    code_iterations : NNLS iterations for the codes of each batch.
    forget : weight of the past sufficient statistics at each batch (Mairal et al.'s forgetting factor).
    ridge : mu of the batch codes relative to the atoms' scale (atoms renormalized after each batch).

    Returns
    -------
    (k, d) unit-norm atoms.
    """
    if not 0.0 <= forget <= 1.0:
        raise ValueError(f"nmf: forget {forget}, expected in [0, 1]")
    atoms: torch.Tensor | None = None
    gram = cross = None
    for epoch in range(epochs):
        for batch in batches():
            _check(batch, k)
            if atoms is None:
                generator = generator or torch.Generator(device=batch.device).manual_seed(0)
                _, atoms = _init(batch, k, generator)
                gram = torch.zeros(k, k, dtype=batch.dtype, device=batch.device)
                cross = torch.zeros(k, batch.shape[1], dtype=batch.dtype, device=batch.device)
            z = nnls_codes(batch, atoms, code_iterations, ridge=ridge)
            gram = forget * gram + z.T @ z / batch.shape[0]
            cross = forget * cross + z.T @ batch / batch.shape[0]
            atoms = _hals_atoms(atoms, gram, cross)
            if ridge > 0:
                atoms = _normalize(torch.ones(1, k, dtype=atoms.dtype, device=atoms.device), atoms)[1]
        log.info("online nmf: epoch %d/%d done", epoch + 1, epochs)
    if atoms is None:
        raise ValueError("nmf: the batch stream was empty")
    return _normalize(torch.ones(1, k, dtype=atoms.dtype, device=atoms.device), atoms)[1]


def coder(atoms: torch.Tensor, spec: DictionarySpec) -> NMFDictionary:
    """The one encoder of an NNLS-coded dictionary: ridge NNLS with the configured mu, stopped per sample at the
    relative duality gap ``code_tol`` (at most ``code_iterations``), for the fit's codes and new inputs alike."""
    return NMFDictionary(atoms, spec.code_iterations, spec.code_ridge, spec.code_tol)


def _fit(rows: Rows, spec: DictionarySpec, ctx: FitContext) -> NMFDictionary:
    """Full-batch HALS / MU (``batch_size`` null; float32: the blocked HALS recomputes its residuals from the Gram
    every block, so it reaches float64's error, bench/RESULTS.md) or the online fit streamed from the file."""
    if spec.batch_size is None:
        fit = fit_nmf(
            rows.matrix(),
            ctx.k,
            spec.iterations,
            spec.solver,
            tol=spec.tol,
            generator=ctx.generator,
            ridge=spec.code_ridge,
        )
        atoms = fit.atoms
    else:
        atoms = fit_nmf_online(
            lambda: rows.batches(spec.batch_size),
            ctx.k,
            spec.epochs,
            spec.code_iterations,
            generator=ctx.generator,
            ridge=spec.code_ridge,
        )
    return coder(atoms.float(), spec)


def load_coded(arrays: dict[str, np.ndarray], spec: DictionarySpec, device: torch.device) -> NMFDictionary:
    """An NNLS-coded dictionary (NMF, Semi-NMF) from its stored atoms: :func:`coder` on the device."""
    return coder(torch.from_numpy(np.asarray(arrays["atoms"])).float().to(device), spec)


METHOD = Method(
    "nmf",
    fit=_fit,
    load=load_coded,
    nonnegative_input=True,
    summary="NMF A ~ Z D (Z, D >= 0), ridge-NNLS codes",
)
