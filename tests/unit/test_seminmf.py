"""Semi-NMF (featflow.dictionary.seminmf): planted recovery, a monotone objective, the online fit, Ding et al.'s
updates and overcomplete's SemiNMF as references, the registry and the stored state."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from featflow.dictionary.base import FitContext, Rows
from featflow.dictionary.nmf import coder, relative_error
from featflow.dictionary.registry import method
from featflow.dictionary.seminmf import METHOD, _rows, fit_seminmf, fit_seminmf_online
from featflow.dictionary.spec import DictionarySpec

torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine


def planted(
    seed: int = 0, n: int = 2000, d: int = 24, k: int = 16, active: int = 3, noise: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """``A = Z D + noise``: k signed unit atoms in d dimensions, each row a mix of ``active`` of them with weights
    in [0.5, 1.5] (sparse Z >= 0). Returns (A (n, d) float32, D (k, d))."""
    g = np.random.default_rng(seed)
    atoms = g.standard_normal((k, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n, k))
    support = np.argsort(g.random((n, k)), axis=1)[:, :active]
    np.put_along_axis(codes, support, g.uniform(0.5, 1.5, (n, active)), axis=1)
    a = codes @ atoms + noise * g.standard_normal((n, d))
    return a.astype(np.float32), atoms


def matched_cosines(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Cosine of each planted atom with its Hungarian-matched found atom (signed: Semi-NMF atoms have a sign)."""
    found = found / np.linalg.norm(found, axis=1, keepdims=True)
    cos = truth @ found.T
    rows, cols = linear_sum_assignment(-cos)
    return cos[rows, cols]


def rows_of(a: np.ndarray) -> Rows:
    return Rows(n=a.shape[0], d=a.shape[1], read=lambda s: a[s], device=torch.device("cpu"))


def ridge_objective(a: torch.Tensor, codes: torch.Tensor, atoms: torch.Tensor, ridge: float) -> float:
    """``||A - Z D||^2 + mu ||Z||^2`` at unit atoms (codes rescaled to match), mu = ridge."""
    norms = atoms.norm(dim=1)
    z = codes * norms
    return float((a - z @ (atoms / norms[:, None])).square().sum() + ridge * z.square().sum())


def test_planted_signed_dictionary_is_recovered_and_nmf_refuses_it() -> None:
    """Every planted atom is found (Hungarian-matched cosine > 0.95; over 10 data seeds the worst atom was at
    0.986 after 800 iterations, while 200 iterations left one atom at 0.58-0.94: the bound tests convergence,
    not just the subspace). NMF refuses the same signed data, naming a layer after a ReLU."""
    a, truth = planted()
    spec = DictionarySpec(method="seminmf", k=16, iterations=800, tol=0.0)
    ctx = FitContext(k=16, generator=torch.Generator().manual_seed(0), layer="pre_relu")
    dictionary = method("seminmf").fit(rows_of(a), spec, ctx)
    assert dictionary.signed_atoms and not dictionary.signed_codes
    cos = matched_cosines(truth, dictionary.atoms.double().numpy())
    assert cos.min() > 0.95, np.sort(cos)
    with pytest.raises(ValueError, match="after a ReLU"):
        method("nmf").fit(rows_of(a), DictionarySpec(k=16, iterations=5), ctx)


@pytest.mark.parametrize("ridge", [0.0, 0.05])
def test_full_batch_objective_never_increases(ridge: float) -> None:
    """F = ||A - Z D||^2 + mu ||Z||^2 at unit atoms never rises: the code sweeps and the atom solve minimize F in
    their block (the atoms' Gram diagonal times 1 + ridge), renormalizing and replacing dead atoms leave it."""
    a = torch.from_numpy(planted(seed=3, n=600, noise=0.05)[0]).double()
    trace: list[float] = []

    def record(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        np.testing.assert_allclose(atoms.norm(dim=1).numpy(), 1.0, rtol=1e-12)
        trace.append(ridge_objective(a, codes, atoms, ridge))
        return False

    fit = fit_seminmf(a, k=16, iterations=60, tol=0.0, ridge=ridge, callback=record)
    assert len(trace) == 60 and (fit.codes >= 0).all()
    assert np.all(np.diff(trace) <= 1e-10 * trace[0])
    assert trace[-1] < 0.5 * trace[0]


def test_errors_are_the_exact_relative_error() -> None:
    """The trace every 10 iterations, read off the Gram products, is the iterate's ||A - Z D|| / ||A||."""
    a = torch.from_numpy(planted(seed=1, n=400, noise=0.05)[0]).double()
    exact: dict[int, float] = {}

    def record(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        exact[it] = relative_error(a, codes, atoms)
        return False

    fit = fit_seminmf(a, k=16, iterations=20, tol=0.0, ridge=0.01, callback=record)
    np.testing.assert_allclose(fit.errors, [exact[10], exact[20], exact[20]], rtol=1e-7)


def test_online_fit_is_close_to_the_full_batch() -> None:
    """Streamed in batches of 256 (10 epochs, running Z^T Z and Z^T A), the dictionary codes the data with a
    relative error within 15% of the full-batch fit's (measured: 0.088-0.091 against 0.082-0.083; its initial
    atoms, random rows, give > 0.3)."""
    a_np, _ = planted(seed=0, noise=0.05)
    a = torch.from_numpy(a_np)
    spec = DictionarySpec(method="seminmf", k=16, iterations=300, tol=0.0)
    online = fit_seminmf_online(
        lambda: (a[s : s + 256] for s in range(0, a.shape[0], 256)),
        16,
        epochs=10,
        code_iterations=spec.code_iterations,
        generator=torch.Generator().manual_seed(0),
        ridge=spec.code_ridge,
    )
    full = fit_seminmf(a, 16, 300, 0.0, torch.Generator().manual_seed(0), spec.code_ridge).atoms
    initial = _rows(a, 16, torch.Generator().manual_seed(0))
    error = {
        name: relative_error(a, coder(d, spec).encode(a), d)
        for name, d in [("online", online), ("full", full), ("initial", initial)]
    }
    assert error["online"] <= 1.15 * error["full"], error
    assert error["initial"] > 2 * error["online"], error


def ding_semi_nmf(a: np.ndarray, atoms: np.ndarray, iterations: int) -> float:
    """Ding, Li & Jordan's (2010) Semi-NMF updates in numpy from initial atoms: codes started at
    max(A D^T, 0) + 0.2 (their k-means indicators + 0.2), then per iteration the least-squares atoms
    ``D = (Z^T Z)^-1 Z^T A`` and the multiplicative code rule
    ``Z <- Z sqrt(((A D^T)^+ + Z (D D^T)^-) / ((A D^T)^- + Z (D D^T)^+))``. Returns ||A - Z D||^2."""
    a = a.astype(np.float64)
    z = np.maximum(a @ atoms.T, 0.0) + 0.2
    for _ in range(iterations):
        atoms = np.linalg.solve(z.T @ z, z.T @ a)
        cross, gram = a @ atoms.T, atoms @ atoms.T
        up = np.maximum(cross, 0) + z @ np.maximum(-gram, 0)
        down = np.maximum(-cross, 0) + z @ np.maximum(gram, 0)
        z *= np.sqrt(up / np.maximum(down, 1e-300))
    atoms = np.linalg.solve(z.T @ z, z.T @ a)
    return float(np.square(a - z @ atoms).sum())


def test_objective_at_most_ding_et_al_updates_from_the_same_atoms() -> None:
    """At ridge 0 (Ding et al.'s objective) and equal iterations from the same initial atoms, the fit's
    ||A - Z D||^2 is within 1% of (in fact below) that of Ding et al.'s multiplicative updates."""
    a, _ = planted(seed=2, n=1000, noise=0.05)
    initial = _rows(torch.from_numpy(a).double(), 16, torch.Generator().manual_seed(5)).numpy()
    ours = fit_seminmf(torch.from_numpy(a).double(), 16, 200, 0.0, torch.Generator().manual_seed(5))
    theirs = ding_semi_nmf(a, initial, 200)
    assert ours.errors[-1] ** 2 * np.square(a.astype(np.float64)).sum() <= 1.01 * theirs


def load_overcomplete_semi_nmf(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """overcomplete's ``optimization/semi_nmf.py`` from an installed overcomplete, without running its package
    ``__init__`` (which imports cv2 and matplotlib's removed ``get_cmap``): its two packages are stood in for by
    empty modules on their folders. Skips where overcomplete is not installed (it requires opencv-python, too
    heavy for the test extra)."""
    spec = importlib.util.find_spec("overcomplete")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("overcomplete is not installed (pip install overcomplete --no-deps)")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in [("overcomplete", root), ("overcomplete.optimization", root / "optimization")]:
        stub = types.ModuleType(name)
        stub.__path__ = [str(folder)]
        monkeypatch.setitem(sys.modules, name, stub)
    for name in ["overcomplete.base", "overcomplete.data", "overcomplete.optimization.base"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module("overcomplete.optimization.semi_nmf")
    monkeypatch.delitem(sys.modules, "overcomplete.optimization.semi_nmf")
    return module


def test_objective_at_most_overcomplete_semi_nmf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle: overcomplete's SemiNMF (multiplicative updates, Ding et al.) on the same data and k at equal
    iterations; the fit at ridge 0 (its objective) reaches a relative error at least as low."""
    semi_nmf = load_overcomplete_semi_nmf(monkeypatch)
    a = torch.from_numpy(planted(seed=4, n=1000, noise=0.05)[0])
    torch.manual_seed(0)
    codes, atoms = semi_nmf.SemiNMF(16, tol=0.0).fit(a, max_iter=200)
    theirs = relative_error(a, codes, atoms)
    ours = fit_seminmf(a, 16, 200, 0.0, torch.Generator().manual_seed(0)).errors[-1]
    assert ours <= theirs, (ours, theirs)


def test_registry_and_state_round_trip() -> None:
    """``method("seminmf")`` is this module's METHOD (signed input allowed); a fit runs in float32 on the rows'
    device, and ``load(state())`` gives the same atoms and the same codes."""
    assert method("seminmf") is METHOD and METHOD.name == "seminmf" and not METHOD.nonnegative_input
    a, _ = planted(seed=6, n=300, k=12, d=20, noise=0.05)
    spec = DictionarySpec(method="seminmf", k=12, iterations=30)
    fitted = METHOD.fit(rows_of(a.astype(np.float64)), spec, FitContext(12, torch.Generator().manual_seed(1), "x"))
    assert fitted.atoms.dtype == torch.float32
    state = fitted.state()
    loaded = METHOD.load(state, spec, torch.device("cpu"))
    assert torch.equal(loaded.atoms, fitted.atoms)
    batch = torch.from_numpy(a[:50])
    assert torch.equal(loaded.encode(batch), fitted.encode(batch))
    online = METHOD.fit(
        rows_of(a),
        DictionarySpec(method="seminmf", k=12, batch_size=100, epochs=2),
        FitContext(12, torch.Generator(), "x"),
    )
    assert online.atoms.shape == (12, 20) and online.atoms.dtype == torch.float32


def test_dead_atoms_are_replaced() -> None:
    """With fewer rows than atoms the initial atoms repeat; a repeated atom gets no code and would stay zero
    after the atom solve: it is replaced by a row of the data, so every atom ends at unit norm."""
    a = torch.from_numpy(planted(seed=7, n=10, noise=0.05)[0]).double()
    fit = fit_seminmf(a, 16, iterations=5, tol=0.0, ridge=0.01)
    np.testing.assert_allclose(fit.atoms.norm(dim=1).numpy(), 1.0, rtol=1e-12)
    assert torch.isfinite(fit.codes).all()
