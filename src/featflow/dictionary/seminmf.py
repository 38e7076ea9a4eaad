"""Semi-NMF ``A ~ Z D`` with signed atoms D (k, d) and codes Z >= 0 (Ding, Li & Jordan 2010), for signed layers.

NMF needs activations >= 0 (a layer after a ReLU); Semi-NMF keeps the codes non-negative (parts add up) but lets
the atoms, and so the activations, take any sign: a pre-ReLU layer, a transformer's residual stream. The codes are
the NMF's (:func:`featflow.dictionary.nmf.coder`: ridge NNLS, valid for signed atoms, identifiable on an
overcomplete dictionary), so every downstream stage reads a Semi-NMF dictionary as it reads an NMF one.

The fit alternates, like Ding et al.'s, an update of the codes with the atoms fixed and the least-squares atoms
with the codes fixed. Where Ding et al. (and overcomplete's ``SemiNMF``) update the codes by a multiplicative rule
and leave the atoms' scale free, featflow minimizes the one objective its codes solve,
``F = ||A - Z D||^2 + mu ||Z||^2`` at unit-norm atoms: HALS sweeps on the codes (exact in each code column, with
the ridge) and the atoms' exact block minimizer (a k x k Cholesky solve), then the atoms are renormalized, which
leaves F unchanged. So F never increases (tests/unit/test_seminmf.py). Two fits with one result:
:func:`fit_seminmf` on the whole matrix and :func:`fit_seminmf_online` from streamed batches (running sufficient
statistics ``Z^T Z``, ``Z^T A`` with a forgetting factor, as :func:`featflow.dictionary.nmf.fit_nmf_online`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import torch

from featflow.dictionary.base import FitContext, Method, Rows
from featflow.dictionary.nmf import (
    NMFDictionary,
    NMFResult,
    _accelerated,
    _gram_t,
    _normalize_t,
    _objective,
    _sweeps,
    coder,
    load_coded,
    relative_error,
)
from featflow.dictionary.spec import DictionarySpec
from featflow.metrics.nnls import hals_block, nnls_codes

log = logging.getLogger(__name__)

_EPS = 1e-12
_JITTER = 1e-10  # relative to the mean of diag(Z^T Z), only at ridge 0: (Z^T Z + eps I)^-1 Z^T A


def _check(a: torch.Tensor, k: int) -> None:
    if a.ndim != 2:
        raise ValueError(f"seminmf: expected activations (n, d), got shape {tuple(a.shape)}")
    if k < 1:
        raise ValueError(f"seminmf: k {k}, expected >= 1")


def _rows(a: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct rows of ``a`` drawn by ``generator`` (with repeats only if ``a`` has fewer rows), scaled
    to unit norm: the initial atoms and the replacements of dead atoms (Ding et al. start from k-means centroids;
    a row of the data is a centroid of one sample; overcomplete's SemiNMF draws codes |N(0, mean|A| / k)| and
    solves for the atoms, which starts every atom near the data's mean direction)."""
    n = a.shape[0]
    if count <= n:
        index = torch.randperm(n, generator=generator, device=generator.device)[:count]
    else:
        index = torch.randint(n, (count,), generator=generator, device=generator.device)
    rows = a[index.to(a.device)]
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(_EPS)


def atoms_solve(zz: torch.Tensor, za: torch.Tensor, ridge: float) -> torch.Tensor:
    """The least-squares atoms ``D = (Z^T Z + mu diag(Z^T Z))^-1 Z^T A`` in float64 (Cholesky), the exact
    minimizer in D of ``||A - Z D||^2 + mu sum_j ||z_j||^2 ||d_j||^2``, the scale-invariant form of F (equal at
    unit atoms). ``zz`` already carries the ridge on its diagonal. Atoms whose codes are all zero come out zero
    (their row is set to the identity's); at ridge 0 a relative jitter keeps the solve defined when Z^T Z is
    singular.

    zz : (k, k) ``(1 + ridge)`` on the diagonal of ``Z^T Z``.  za : (k, d) ``Z^T A``.  Returns (k, d).
    """
    gram = zz.double()
    dead = gram.diagonal() <= 0
    gram.diagonal().masked_fill_(dead, 1.0)
    if ridge == 0:
        gram.diagonal().add_(_JITTER * float(gram.diagonal().mean()))
    factor = torch.linalg.cholesky(gram)
    return torch.cholesky_solve(za.double(), factor).to(za.dtype)


def _unit(atoms: torch.Tensor) -> torch.Tensor:
    """Atoms scaled to unit norm; zero atoms stay zero (then replaced by :func:`_revive`)."""
    norms = atoms.norm(dim=1, keepdim=True)
    return atoms / torch.where(norms > _EPS, norms, torch.ones_like(norms))


def _revive(atoms: torch.Tensor, a: torch.Tensor, generator: torch.Generator) -> int:
    """Replace zero atoms (no code used them) by random unit rows of ``a``, in place; F does not move, since their
    codes are zero, and the next code update may use them. Returns how many."""
    dead = atoms.norm(dim=1) <= _EPS
    count = int(dead.sum())
    if count:
        atoms[dead] = _rows(a, count, generator)
    return count


def fit_seminmf(
    a: torch.Tensor,
    k: int,
    iterations: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    ridge: float = 0.0,
    callback: Callable[[int, torch.Tensor, torch.Tensor], bool] | None = None,
) -> NMFResult:
    """Fit ``A ~ Z D`` (Z >= 0, D signed) on a matrix held in (device) memory, in the dtype of ``a``.

    Objective ``F = ||A - Z D||_F^2 + mu ||Z||_F^2`` at unit-norm atoms, mu = ``ridge`` as in
    :func:`featflow.metrics.nnls.ridge_mu` (the codes of new inputs solve the same problem). Per iteration: HALS
    sweeps on the codes (:func:`featflow.dictionary.nmf._accelerated`, the Gram's diagonal times ``1 + ridge``),
    the atoms' exact minimizer (:func:`atoms_solve`), unit-norm atoms (codes rescaled; F unchanged), zero atoms
    replaced by random rows (F unchanged). Every step is a block minimization of F, so F never increases.

    Parameters
    ----------
    a : (n, d) activations of any sign.
    k : number of atoms (k > d: overcomplete).
    iterations : maximal outer iterations (one update of Z then of D).
    tol : stop when the lowest ``sqrt(F) / ||A||`` of 10 iterations improves on the previous 10's by less than
        ``tol`` (relative), as :func:`featflow.dictionary.nmf.fit_nmf`.
    generator : seeds the initial atoms (k distinct random rows of ``a``, unit norm) and dead-atom replacements.
    ridge : mu relative to the atoms' scale; 0 is plain Semi-NMF.
    callback : called after every iteration with (iteration, codes (n, k), unit atoms (k, d)); True stops.

    Returns
    -------
    NMFResult with unit-norm atoms, the codes (n, k) of ``a`` and ``errors``: ``||A - Z D|| / ||A||`` every 10
    iterations (read off the Gram products) and at the end (exact).
    """
    _check(a, k)
    if ridge < 0:
        raise ValueError(f"complexity.dictionary.code_ridge {ridge}: expected >= 0")
    generator = generator or torch.Generator(device=a.device).manual_seed(0)
    n, dim = a.shape
    atoms = _rows(a, k, generator)
    zt = a.new_zeros((k, n))
    block, sweeps = hals_block(k), _sweeps(n, dim, k)[0]
    norm2 = float(torch.linalg.vector_norm(a, dtype=torch.float64)) ** 2
    errors: list[float] = []
    roots, lowest = [math.inf], math.inf
    revived, it = 0, 0
    for it in range(1, iterations + 1):
        gram = atoms @ atoms.T
        gram.diagonal().mul_(1.0 + ridge)
        _accelerated(zt, gram, atoms @ a.T, sweeps, block)
        zz, za = _gram_t(zt), zt @ a
        zz.diagonal().mul_(1.0 + ridge)
        atoms = atoms_solve(zz, za, ridge)
        objective, residual = _objective(norm2, za, zz, atoms, atoms @ atoms.T, ridge)
        lowest = min(lowest, objective)
        _normalize_t(zt, atoms)
        revived += _revive(atoms, a, generator)
        if callback is not None and callback(it, zt.T, atoms):
            break
        if it % 10 == 0 or it == iterations:
            errors.append(math.sqrt(max(residual, 0.0) / max(norm2, _EPS)))
            roots.append(math.sqrt(max(lowest, 0.0) / max(norm2, _EPS)))
            lowest = math.inf
            log.info("seminmf: iteration %d, relative error %.4f", it, errors[-1])
            if roots[-2] - roots[-1] < tol * roots[-2]:
                break
    errors.append(relative_error(a, zt.T, atoms))
    log.info("seminmf: k=%d, %d iterations, relative error %.4f, %d dead atoms replaced", k, it, errors[-1], revived)
    return NMFResult(atoms, zt.T, errors)


def fit_seminmf_online(
    batches: Callable[[], Iterable[torch.Tensor]],
    k: int,
    epochs: int = 5,
    code_iterations: int = 100,
    code_tol: float = 1e-4,
    forget: float = 0.9,
    generator: torch.Generator | None = None,
    ridge: float = 0.0,
) -> torch.Tensor:
    """Minibatch (online) Semi-NMF over data streamed in batches; memory O(k^2 + k d), independent of n.

    Per batch: its codes with the atoms fixed (ridge NNLS, :func:`featflow.metrics.nnls.nnls_codes`), the running
    statistics ``Z^T Z`` and ``Z^T A`` (past ones weighted by ``forget``, Mairal et al. 2010), the atoms that
    minimize the surrogate they define (:func:`atoms_solve`), renormalized; atoms no code has used yet are
    replaced by random rows of the batch.

    Parameters
    ----------
    batches : called once per epoch, yields (b, d) tensors on the device.
    k : number of atoms.
    epochs : passes over the data.
    code_iterations, code_tol : cap and relative duality gap of each batch's codes.
    forget : weight of the past sufficient statistics at each batch.
    generator : seeds the initial atoms (rows of the first batch) and dead-atom replacements.
    ridge : mu of the codes relative to the atoms' scale.

    Returns
    -------
    (k, d) unit-norm atoms.
    """
    if not 0.0 <= forget <= 1.0:
        raise ValueError(f"seminmf: forget {forget}, expected in [0, 1]")
    if ridge < 0:
        raise ValueError(f"complexity.dictionary.code_ridge {ridge}: expected >= 0")
    atoms = gram = cross = None
    for epoch in range(epochs):
        for batch in batches():
            _check(batch, k)
            if atoms is None:
                generator = generator or torch.Generator(device=batch.device).manual_seed(0)
                atoms = _rows(batch, k, generator)
                gram = batch.new_zeros((k, k))
                cross = batch.new_zeros((k, batch.shape[1]))
            z = nnls_codes(batch, atoms, code_iterations, code_tol, ridge=ridge)
            gram = forget * gram + z.T @ z / batch.shape[0]
            cross = forget * cross + z.T @ batch / batch.shape[0]
            ridged = gram.clone()
            ridged.diagonal().mul_(1.0 + ridge)
            atoms = _unit(atoms_solve(ridged, cross, ridge))
            _revive(atoms, batch, generator)
        log.info("online seminmf: epoch %d/%d done", epoch + 1, epochs)
    if atoms is None:
        raise ValueError("seminmf: the batch stream was empty")
    return atoms


def _fit(rows: Rows, spec: DictionarySpec, ctx: FitContext) -> NMFDictionary:
    """Full batch (``batch_size`` null, float32 on the rows' device) or the online fit streamed from the file;
    the dictionary codes with the ridge NNLS of :func:`featflow.dictionary.nmf.coder`."""
    if spec.batch_size is None:
        atoms = fit_seminmf(rows.matrix(), ctx.k, spec.iterations, spec.tol, ctx.generator, spec.code_ridge).atoms
    else:
        atoms = fit_seminmf_online(
            lambda: rows.batches(spec.batch_size),
            ctx.k,
            spec.epochs,
            spec.code_iterations,
            spec.code_tol,
            generator=ctx.generator,
            ridge=spec.code_ridge,
        )
    return coder(atoms.float(), spec)


METHOD = Method(
    "seminmf",
    fit=_fit,
    load=load_coded,
    nonnegative_input=False,
    summary="Semi-NMF A ~ Z D (Z >= 0, D signed; Ding et al. 2010), ridge-NNLS codes",
)
