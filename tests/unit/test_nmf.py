"""NMF recovers a planted non-negative dictionary; agrees with scikit-learn; online fit; bad input."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import NMF

from featflow.dictionary.nmf import NMFDictionary, fit_nmf, fit_nmf_online, relative_error

torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine


def planted(n: int = 1500, k: int = 6, d: int = 20, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A = Z D with sparse non-negative Z and sparse non-negative atoms (identifiable)."""
    rng = np.random.default_rng(seed)
    atoms = rng.random((k, d)) * (rng.random((k, d)) < 0.35)
    atoms[np.arange(k), rng.choice(d, k, replace=False)] += 1.0  # each atom owns a coordinate: unique NMF
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.exponential(1.0, (n, k)) * (rng.random((n, k)) < 0.4)
    return torch.from_numpy(codes @ atoms), atoms


def matched_cosines(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Cosines of the Hungarian matching between true and found atoms."""
    f = found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)
    t = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    cos = t @ f.T
    rows, cols = linear_sum_assignment(-cos)
    return cos[rows, cols]


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_recovers_planted_dictionary(solver: str) -> None:
    a, truth = planted()
    result = fit_nmf(a, k=6, iterations=300 if solver == "hals" else 1500, solver=solver, tol=0.0)
    assert matched_cosines(result.atoms.numpy(), truth).min() >= 0.95
    assert relative_error(a, result.codes, result.atoms) < 0.05
    assert torch.allclose(result.atoms.norm(dim=1), torch.ones(6, dtype=a.dtype))


def test_online_recovers_planted_dictionary() -> None:
    a, truth = planted()
    atoms = fit_nmf_online(lambda: a.split(500), k=6, epochs=15, code_iterations=60)
    assert matched_cosines(atoms.numpy(), truth).min() >= 0.95


def test_error_close_to_sklearn_at_equal_iterations() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((300, 16)) ** 2
    ours = fit_nmf(torch.from_numpy(a), k=24, iterations=100, tol=0.0)
    ref = NMF(n_components=24, init="random", solver="cd", max_iter=100, tol=0.0, random_state=0).fit(a)
    ref_err = np.linalg.norm(a - ref.transform(a) @ ref.components_) / np.linalg.norm(a)
    assert relative_error(torch.from_numpy(a), ours.codes, ours.atoms) <= ref_err * 1.05


def test_encode_decode_roundtrip() -> None:
    a, _ = planted(n=300)
    result = fit_nmf(a, k=6, iterations=300)
    dictionary = NMFDictionary(result.atoms)
    z = dictionary.encode(a)
    assert (z >= 0).all() and z.shape == (300, 6)
    assert relative_error(a, z, dictionary.atoms) < 0.05
    assert torch.allclose(dictionary.decode(z), z @ result.atoms)


def test_rejects_negative_and_bad_solver() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        fit_nmf(-torch.ones(5, 3), k=2)
    with pytest.raises(ValueError, match="solver"):
        fit_nmf(torch.ones(5, 3), k=2, solver="als")


def test_ridge_fit_keeps_unit_atoms_and_its_codes_solve_the_encoder_problem() -> None:
    """With a code ridge the fit renormalizes atoms (the penalty cannot be dodged by scaling) and reconstructs
    about as well as plain NMF; codes of the same data by the encoder reach the same objective."""
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(300, 6, generator=gen, dtype=torch.float64) @ torch.rand(6, 10, generator=gen, dtype=torch.float64)
    plain = fit_nmf(a, k=12, iterations=200, tol=0.0)
    ridge = fit_nmf(a, k=12, iterations=200, tol=0.0, ridge=1e-2)
    np.testing.assert_allclose(ridge.atoms.norm(dim=1).numpy(), 1.0, atol=1e-9)
    assert relative_error(a, ridge.codes, ridge.atoms) < relative_error(a, plain.codes, plain.atoms) + 0.05
    encoded = NMFDictionary(ridge.atoms, 3000, ridge=1e-2).encode(a)

    def objective(z: torch.Tensor) -> float:
        return float(((a - z @ ridge.atoms) ** 2).sum() + 1e-2 * (z**2).sum())

    assert objective(encoded) <= objective(ridge.codes) * (1 + 1e-6)


def planted_low_rank(n: int = 600, d: int = 24, rank: int = 12, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.exponential(1.0, (n, rank)) * (rng.random((n, rank)) < 0.5) @ rng.random((rank, d)) + 0.01 * rng.random(
        (n, d)
    )


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_error_at_most_sklearns_at_equal_iterations(solver: str) -> None:
    """Planted low-rank non-negative matrix, overcomplete k, scikit-learn started from the fit's own init: at the
    same iteration budget the fit's error is at most scikit-learn's. Without extrapolation the fit is the same
    Gauss-Seidel HALS as scikit-learn's cd, so the errors agree to rounding; extrapolated it is lower."""
    from featflow.dictionary.nmf import _init

    a = planted_low_rank()
    k = 32
    z0, d0 = _init(torch.from_numpy(a), k, torch.Generator().manual_seed(0))
    for iters in (1, 20, 60):
        ref = NMF(n_components=k, init="custom", solver=solver, max_iter=iters, tol=0.0)
        w = ref.fit_transform(a, W=z0.numpy().copy(), H=d0.numpy().copy())
        ref_err = np.linalg.norm(a - w @ ref.components_) / np.linalg.norm(a)
        plain = fit_nmf(torch.from_numpy(a), k=k, iterations=iters, tol=0.0, extrapolate=False)
        err = relative_error(torch.from_numpy(a), plain.codes, plain.atoms)
        assert err <= ref_err * (1 + 1e-9)
        if solver == "cd":
            assert err >= ref_err * (1 - 1e-6)  # same algorithm, same start: same iterates
        if iters > 1:
            fast = fit_nmf(torch.from_numpy(a), k=k, iterations=iters, tol=0.0)
            assert relative_error(torch.from_numpy(a), fast.codes, fast.atoms) <= ref_err * (0.9 if iters > 20 else 1)


def test_hals_error_never_increases_and_float32_matches_float64() -> None:
    """Every plain HALS iteration lowers the objective; extrapolated HALS ends lower, in float32 too."""
    a = planted_low_rank(seed=3)
    errors = []

    def trace(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        errors.append(relative_error(torch.from_numpy(a), codes.double(), atoms.double()))
        return False

    plain = fit_nmf(torch.from_numpy(a), k=32, iterations=80, tol=0.0, callback=trace, extrapolate=False)
    assert np.all(np.diff(errors) <= 1e-12)
    fit64 = fit_nmf(torch.from_numpy(a), k=32, iterations=80, tol=0.0)
    err64 = relative_error(torch.from_numpy(a), fit64.codes, fit64.atoms)
    assert err64 < relative_error(torch.from_numpy(a), plain.codes, plain.atoms)
    fit32 = fit_nmf(torch.from_numpy(a).float(), k=32, iterations=80, tol=0.0)
    assert fit32.codes.dtype == torch.float32
    err32 = relative_error(torch.from_numpy(a), fit32.codes.double(), fit32.atoms.double())
    # NMF trajectories are chaotic (rounding changes the path, not the attainable error): float32 stays below
    # plain float64 HALS and near extrapolated float64
    assert err32 <= relative_error(torch.from_numpy(a), plain.codes, plain.atoms) and err32 <= 1.5 * err64


def test_callback_stops_the_fit() -> None:
    a = planted_low_rank()
    seen = []
    fit_nmf(torch.from_numpy(a), k=8, iterations=50, tol=0.0, callback=lambda it, z, d: seen.append(it) or it == 7)
    assert seen == list(range(1, 8))


def ridge_objective(a: torch.Tensor, codes: torch.Tensor, atoms: torch.Tensor, ridge: float) -> float:
    """``||A - Z D||^2 + mu ||Z||^2`` at unit atoms (codes rescaled to match), mu = ridge."""
    norms = atoms.norm(dim=1)
    z = codes * norms
    return float((a - z @ (atoms / norms[:, None])).square().sum() + ridge * z.square().sum())


def test_ridge_fit_never_raises_its_objective() -> None:
    """With the code ridge, every plain HALS iteration lowers F = ||A - Z D||^2 + mu ||Z||^2 (unit atoms): the
    atom update minimizes F exactly in each atom (the Gram's diagonal times 1 + ridge), so renormalizing the atoms
    no longer moves the penalty up."""
    a = torch.from_numpy(planted_low_rank(seed=3))
    trace: list[float] = []

    def record(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        trace.append(ridge_objective(a, codes, atoms, 0.05))
        return False

    fit_nmf(a, k=32, iterations=60, tol=0.0, ridge=0.05, callback=record, extrapolate=False)
    assert np.all(np.diff(trace) <= 1e-10 * trace[0])


def test_errors_come_from_the_gram_products_not_a_residual(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace every 10 iterations is read off ||A||^2 - 2 <Z^T A, D> + <Z^T Z, D D^T> (no n x d residual but
    the final one) and equals the exact relative error of the iterate (float64: to rounding)."""
    import featflow.dictionary.nmf as nmf

    a = torch.from_numpy(planted_low_rank())
    exact: dict[int, float] = {}

    def record(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        exact[it] = relative_error(a, codes, atoms)
        return False

    calls = []
    monkeypatch.setattr(nmf, "relative_error", lambda *args: calls.append(1) or relative_error(*args))
    for ridge in (0.0, 0.02):
        calls.clear()
        fit = nmf.fit_nmf(a, k=24, iterations=30, tol=0.0, ridge=ridge, callback=record, extrapolate=False)
        assert len(calls) == 1  # the final, exact error only
        np.testing.assert_allclose(fit.errors[:3], [exact[10], exact[20], exact[30]], rtol=1e-7)
        np.testing.assert_allclose(fit.errors[3], exact[30], rtol=1e-12)


def test_default_extrapolation_where_it_won_at_equal_time() -> None:
    """HER by default where the atoms get one HALS sweep per iteration (it won at the default size, n 2,000,
    d 64, k 128); not where the accelerated HALS repeats the atoms' sweeps (it lost at n 10,000, d 512, k 2,048:
    bench/bench_nmf.py)."""
    from featflow.dictionary.nmf import default_extrapolation

    assert default_extrapolation(2000, 64, 128)
    assert not default_extrapolation(10000, 512, 2048)


def test_blocked_gram_equals_the_product() -> None:
    from featflow.dictionary.nmf import _gram_t

    x = torch.rand(37, 90, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_gram_t(x, blocks=4, min_k=8), x @ x.T, rtol=1e-12, atol=1e-12)


def test_the_nmf_method_fits_as_fit_nmf_did() -> None:
    """NMF behind the dictionary contract is the stage's former call: the same atoms from the same rows, seed and
    keys (full batch), and the same codes from its encoder."""
    from featflow.dictionary.base import FitContext, Rows
    from featflow.dictionary.registry import method
    from featflow.dictionary.spec import DictionarySpec

    a = torch.rand(300, 12, generator=torch.Generator().manual_seed(3))
    spec = DictionarySpec(k=16, iterations=40)
    rows = Rows(300, 12, lambda s: a[s].numpy(), torch.device("cpu"))
    fitted = method("nmf").fit(rows, spec, FitContext(16, torch.Generator().manual_seed(5), "act"))
    direct = fit_nmf(a, 16, 40, "hals", spec.tol, torch.Generator().manual_seed(5), spec.code_ridge).atoms
    torch.testing.assert_close(fitted.atoms, direct.float(), rtol=0, atol=0)
    codes = NMFDictionary(direct.float(), spec.code_iterations, spec.code_ridge, spec.code_tol).encode(a)
    torch.testing.assert_close(fitted.encode(a), codes, rtol=0, atol=0)
    assert not fitted.signed_atoms and not fitted.signed_codes
