"""Batched codes match scipy.optimize.nnls; invariants of the solver."""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from featflow.metrics.nnls import hals_sweeps, nnls_codes

torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine


def problem(n: int, k: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    atoms = np.abs(rng.normal(size=(k, d)))
    return rng.normal(size=(n, d)) + 0.5, atoms


def test_matches_scipy_when_unique() -> None:
    a, atoms = problem(40, 8, 20)  # k < d: full column rank, unique solution
    ref = np.stack([nnls(atoms.T, row)[0] for row in a])
    ours = nnls_codes(torch.from_numpy(a), torch.from_numpy(atoms), iterations=3000, tol=0.0).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_reaches_scipy_objective_when_overcomplete() -> None:
    a, atoms = problem(30, 24, 12, seed=1)  # k > d: solutions need not be unique, the optimum value is
    ref = np.stack([nnls(atoms.T, row)[1] ** 2 for row in a])
    ours = nnls_codes(torch.from_numpy(a), torch.from_numpy(atoms), iterations=3000, tol=0.0).numpy()
    assert (ours >= 0).all()
    ours_obj = ((a - ours @ atoms) ** 2).sum(1)
    np.testing.assert_allclose(ours_obj, ref, rtol=1e-4, atol=1e-8)


def test_hals_sweeps_match_scipy() -> None:
    a, atoms = problem(20, 6, 15, seed=2)
    x = torch.zeros(20, 6, dtype=torch.float64)
    d = torch.from_numpy(atoms)
    hals_sweeps(x, d @ d.T, torch.from_numpy(a) @ d.T, 2000)
    ref = np.stack([nnls(atoms.T, row)[0] for row in a])
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-6)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="dictionary"):
        nnls_codes(torch.ones(3, 4), torch.ones(5, 3))
    with pytest.raises(ValueError, match="iterations"):
        nnls_codes(torch.ones(3, 4), torch.ones(5, 4), iterations=0)


@pytest.mark.parametrize("ridge", [1e-2, 1e-1])
def test_ridge_codes_are_unique_and_match_scipy_on_the_augmented_system(ridge: float) -> None:
    """Overcomplete (k > d): with mu ||z||^2 the code is unique; scipy's nnls on [D^T; sqrt(mu) I] z = [a; 0]
    (an independent exact solver) gives the same codes."""
    a, atoms = problem(30, 24, 12, seed=1)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    mu = ridge * (atoms**2).sum(1).mean()
    aug = np.vstack([atoms.T, np.sqrt(mu) * np.eye(24)])
    ref = np.stack([nnls(aug, np.concatenate([row, np.zeros(24)]))[0] for row in a])
    ours = nnls_codes(torch.from_numpy(a), torch.from_numpy(atoms), iterations=5000, tol=0.0, ridge=ridge).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    with pytest.raises(ValueError, match="code_ridge"):
        nnls_codes(torch.from_numpy(a), torch.from_numpy(atoms), ridge=-1.0)


def ridge_problem(n: int, k: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative inputs and unit-norm non-negative atoms (coherent, as NMF atoms are)."""
    rng = np.random.default_rng(seed)
    atoms = rng.random((k, d)) * (rng.random((k, d)) < 0.5) + 0.01
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.exponential(1.0, (n, k)) * (rng.random((n, k)) < 0.1)
    return codes @ atoms + 0.05 * rng.random((n, d)), atoms


def scipy_ridge(a: np.ndarray, atoms: np.ndarray, mu: float) -> np.ndarray:
    k = atoms.shape[0]
    aug = np.vstack([atoms.T, np.sqrt(mu) * np.eye(k)])
    return np.stack([nnls(aug, np.concatenate([row, np.zeros(k)]))[0] for row in a])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("form, k, d", [("gram", 48, 32), ("dictionary", 48, 32), ("auto", 96, 24)])
def test_codes_meet_the_gap_against_scipy_on_the_augmented_system(
    dtype: torch.dtype, form: str, k: int, d: int
) -> None:
    """Each sample stops at a certified relative gap of 1e-4: its objective is within 1e-4 of scipy's exact
    optimum of the augmented system, and the certificate is an upper bound on the true gap."""
    from featflow.metrics.nnls import nnls_codes_report

    a, atoms = ridge_problem(200, k, d, seed=3)
    mu = 1e-2
    ref = scipy_ridge(a, atoms, mu)
    z, report = nnls_codes_report(
        torch.from_numpy(a).to(dtype), torch.from_numpy(atoms).to(dtype), 5000, 1e-4, ridge=mu, form=form
    )
    assert report.converged and report.unconverged == 0 and report.max_gap <= 1e-4
    assert report.form == ("dictionary" if k > 2 * d else "gram") if form == "auto" else report.form == form
    assert report.iterations < 5000  # stopped on the gap, not on the cap

    def objective(codes: np.ndarray) -> np.ndarray:
        return ((a - codes @ atoms) ** 2).sum(1) + mu * (codes**2).sum(1)

    true_gap = (objective(z.double().numpy()) - objective(ref)) / objective(ref)
    assert true_gap.max() <= 1.2e-4  # 1e-4 certified, float32 rounding of the objective on top
    assert true_gap.min() >= -1e-5  # scipy is the exact optimum


def test_gap_certificate_bounds_the_true_gap_with_and_without_ridge() -> None:
    """At any iterate (here: caps too small for the tolerance) the per-sample certificate is >= the true relative
    gap, and close to it near the optimum; with too few iterations the report says so."""
    from featflow.metrics.nnls import nnls_codes_report

    a, atoms = ridge_problem(100, 40, 20, seed=4)
    for mu in (1e-2, 0.0):
        ref = scipy_ridge(a, atoms, mu) if mu > 0 else np.stack([nnls(atoms.T, row)[0] for row in a])

        def objective(codes: np.ndarray, mu: float = mu) -> np.ndarray:
            return ((a - codes @ atoms) ** 2).sum(1) + mu * (codes**2).sum(1)

        for cap in (5, 30, 100):
            z, report = nnls_codes_report(torch.from_numpy(a), torch.from_numpy(atoms), cap, 1e-12, ridge=mu)
            assert not report.converged and report.unconverged > 0 and report.iterations == cap
            true_gap = (objective(z.numpy()) - objective(ref)) / objective(z.numpy())
            assert true_gap.max() <= report.max_gap * (1 + 1e-9)
            if mu > 0 and cap == 100:
                assert report.max_gap < 10 * true_gap.max()  # not vacuous


def test_encoder_warns_and_reports_when_the_cap_is_too_small(caplog: pytest.LogCaptureFixture) -> None:
    from featflow.dictionary.nmf import NMFDictionary

    a, atoms = ridge_problem(50, 40, 20, seed=5)
    codes, report = NMFDictionary(torch.from_numpy(atoms), 3, ridge=1e-2).encode_report(torch.from_numpy(a))
    assert not report.converged and report.attrs()["codes_converged"] is False
    assert set(report.attrs()) >= {"codes_converged", "codes_max_gap", "codes_unconverged", "codes_iterations"}
    assert "code_iterations" in caplog.text
    _, report = NMFDictionary(torch.from_numpy(atoms), 3000, ridge=1e-2).encode_report(torch.from_numpy(a))
    assert report.converged and report.max_gap <= 1e-4


def test_blocked_hals_equals_column_by_column_hals() -> None:
    """The blocked sweep is exact Gauss-Seidel HALS (any block size), not a Jacobi approximation."""
    from featflow.metrics.nnls import hals_rows

    rng = np.random.default_rng(6)
    h = torch.from_numpy(rng.random((37, 15)))
    a = torch.from_numpy(rng.random((60, 15)))
    gram, cross_t = h @ h.T, h @ a.T
    x0 = torch.from_numpy(rng.random((37, 60)))
    plain = x0.clone()
    for _ in range(3):
        for j in range(37):
            plain[j] = (plain[j] + (cross_t[j] - gram[j] @ plain) / gram[j, j]).clamp_min(0.0)
    for block in (1, 5, 16, 37, 64):
        np.testing.assert_allclose(hals_rows(x0.clone(), gram, cross_t, 3, block).numpy(), plain.numpy(), atol=1e-12)


@pytest.mark.parametrize("form, k, d", [("gram", 48, 32), ("dictionary", 96, 24)])
def test_one_gradient_product_per_iteration(monkeypatch: pytest.MonkeyPatch, form: str, k: int, d: int) -> None:
    """The gradient is affine, so the iteration forms it once, at the new iterate: the certificate and the
    gradient at the extrapolated point cost no matrix product (before: one more gradient per gap check)."""
    from featflow.metrics import nnls

    calls = [0]
    addmm = torch.addmm

    def counted(*args, **kwargs):
        calls[0] += 1
        return addmm(*args, **kwargs)

    monkeypatch.setattr(nnls.torch, "addmm", counted)
    a, atoms = ridge_problem(60, k, d, seed=7)
    _, report = nnls.nnls_codes_report(torch.from_numpy(a), torch.from_numpy(atoms), 40, 0.0, ridge=1e-2, form=form)
    per_gradient = 1 if form == "gram" else 2
    assert report.iterations == 40
    assert calls[0] == per_gradient * (40 + 1)  # the start's gradient, then one per iteration


def test_duality_gap_from_the_gradient_is_the_fenchel_gap() -> None:
    """Known answer: the certificate from ``g = x G - c`` equals F(z) - D(-2 r) evaluated directly (primal and
    dual objectives in float64), bounds F(z) - F* (scipy), and is 0 at the optimum up to rounding."""
    from featflow.metrics.nnls import duality_gap

    a, atoms = ridge_problem(40, 24, 12, seed=8)
    mu = 1e-2
    ref = scipy_ridge(a, atoms, mu)
    rng = np.random.default_rng(8)
    for z in (ref * rng.uniform(0.5, 1.5, ref.shape), ref):
        r = a - z @ atoms
        q = r @ atoms.T
        primal = (r**2).sum(1) + mu * (z**2).sum(1)
        dual = 2 * (r * a).sum(1) - (r**2).sum(1) - (np.maximum(q, 0) ** 2).sum(1) / mu
        gap = duality_gap(torch.from_numpy(z), torch.from_numpy(mu * z - q), mu, None, 12).numpy()
        np.testing.assert_allclose(gap, primal - dual, rtol=1e-9, atol=1e-12)
        best = (((a - ref @ atoms) ** 2).sum(1)) + mu * (ref**2).sum(1)
        assert (gap >= primal - best - 1e-12).all()
    assert gap.max() < 1e-9 * primal.max()  # at scipy's optimum
