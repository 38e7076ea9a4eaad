"""NMF recovers a planted non-negative dictionary; agrees with scikit-learn; online fit; bad input."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import NMF

from featflow.dictionary import NMFDictionary, fit_nmf, fit_nmf_online, relative_error

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
