"""Batched codes match scipy.optimize.nnls; invariants of the solver."""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from featflow.dictionary import nnls_codes
from featflow.dictionary.nnls import hals_sweeps

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
