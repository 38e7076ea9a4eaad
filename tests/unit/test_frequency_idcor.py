"""TwoNN and IdCor (SPEC 3.3) against known answers and a direct reference of Facco et al.'s estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from featflow.frequency.idcor import idcor, two_nearest, twonn, within_class_permutation


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> None:
    torch.set_num_threads(1)  # small problems: threads only add contention


def embedded_cube(n: int, d: int, ambient: int, seed: int) -> np.ndarray:
    """Points uniform in [0, 1]^d, rotated into R^ambient by a random orthonormal map."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(ambient, d)))
    return rng.uniform(size=(n, d)) @ basis.T


def facco_reference(x: np.ndarray, fraction: float = 0.9) -> float:
    """Facco et al. 2017 written directly with scikit-learn neighbors and a least-squares fit through 0."""
    dist, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    mu = np.sort(dist[:, 2] / dist[:, 1])
    n = mu.shape[0]
    n_fit = int(n * fraction)
    y = -np.log(1 - np.arange(1, n_fit + 1) / n)
    return float(np.linalg.lstsq(np.log(mu[:n_fit])[:, None], y, rcond=None)[0][0])


@pytest.mark.parametrize("d", [2, 4])
def test_twonn_recovers_the_dimension_of_an_embedded_cube(d: int) -> None:
    x = embedded_cube(2000, d, 12, seed=d)
    assert twonn(x) == pytest.approx(d, rel=0.12)


def test_twonn_matches_the_direct_reference_and_is_chunk_invariant() -> None:
    x = embedded_cube(600, 3, 8, seed=0)
    assert twonn(x) == pytest.approx(facco_reference(x), rel=1e-9)
    xt = torch.as_tensor(x)
    torch.testing.assert_close(two_nearest(xt, block_bytes=37 * 8 * len(xt)), two_nearest(xt, block_bytes=1 << 30))


def test_twonn_matches_scikit_dimension() -> None:
    """scikit-dimension's TwoNN (discard_fraction 0.1, fit through the origin) is the external oracle."""
    import skdim

    for seed in range(3):
        x = embedded_cube(600, 3, 8, seed=seed)
        assert twonn(x) == pytest.approx(skdim.id.TwoNN(discard_fraction=0.1).fit(x).dimension_, rel=1e-12)


def test_twonn_drops_duplicates() -> None:
    x = embedded_cube(500, 2, 5, seed=3)
    assert twonn(np.concatenate([x, x[:50]])) == pytest.approx(twonn(x), rel=1e-12)


def test_idcor_independent_data_is_zero_with_a_high_p_value() -> None:
    rng = np.random.default_rng(0)
    # low dimensions: TwoNN underestimates high intrinsic dimensions at this sample size
    # the tolerance is TwoNN's sampling noise: over seeds, |IdCor| of independent 2+2-d sets at N = 2000 spans ~0.15
    res = idcor(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), n_perm=20, seed=0)
    assert abs(res.idcor) < 0.2
    assert res.p_value > 0.05


def test_idcor_of_a_nonlinear_function_is_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 3))
    y = np.tanh(x) ** 3 + np.sin(2 * x[:, ::-1])
    res = idcor(x, y, n_perm=30, seed=0)
    assert res.idcor == pytest.approx(1.0, abs=0.12)
    assert res.p_value == pytest.approx(1 / 31)  # no shuffle comes close: the smallest possible p-value


def test_idcor_cylinder() -> None:
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 2 * np.pi, 2000)
    x, y, z = np.cos(t), rng.uniform(-1, 1, 2000), np.sin(t)
    half = idcor(x[:, None], np.c_[y, z], n_perm=0)
    zero = idcor(y[:, None], np.c_[x, z], n_perm=0)
    assert half.idcor == pytest.approx(0.5, abs=0.1)
    assert zero.idcor == pytest.approx(0.0, abs=0.1)


def test_idcor_rejects_unpaired_rows() -> None:
    with pytest.raises(ValueError, match="pair rows"):
        idcor(np.zeros((10, 2)), np.zeros((9, 2)))


def test_within_class_permutation_keeps_every_row_in_its_class() -> None:
    labels = torch.tensor([2, 0, 1, 0, 2, 2, 1, 0])
    perm = within_class_permutation(labels, torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(8)) and torch.equal(labels[perm], labels)


def test_stratified_null_on_clustered_data() -> None:
    """8 clusters, Y a noisy nonlinear function of X's within-cluster position: the plain shuffle mixes the
    clusters and gives p = 1 (its null mean falls below Id_Y, flagged); the within-class shuffle finds the
    dependence (the smallest possible p)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 100)
    mu, nu = rng.normal(size=(8, 10)) * 10, rng.normal(size=(8, 10)) * 10  # cluster centers, far apart
    z = rng.normal(size=(800, 3))
    x = mu[labels] + z @ rng.normal(size=(3, 10))
    y = nu[labels] + np.tanh(z) @ rng.normal(size=(3, 10)) + 0.5 * rng.normal(size=(800, 10))
    res = idcor(x, y, n_perm=20, seed=0, strata=labels)
    assert res.p_value > 0.5 and res.null_below
    assert res.p_stratified == pytest.approx(1 / 21)
    assert res.id_perm_stratified.mean() > res.id_xy


@pytest.mark.parametrize("widths", [(4, 3), (2, 5)])  # X wider, Y wider
def test_permutation_null_forms_the_distances_once_and_equals_the_joint_twonn(monkeypatch, widths) -> None:
    """Each null value equals twonn([X | Y[perm]]) for the seed's permutations (duplicated joint rows dropped as
    twonn drops them), while the neighbor search over all features runs only for Id_X, Id_Y and Id_XY."""
    import featflow.frequency.idcor as module

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, widths[0])), rng.normal(size=(300, widths[1]))
    x[:40], y[:20] = x[0], y[0]  # duplicated rows: 20 joint rows equal before any shuffle
    labels = rng.integers(0, 3, 300)
    calls = []
    real = module.two_nearest
    monkeypatch.setattr(module, "two_nearest", lambda points: calls.append(1) or real(points))
    res = idcor(x, y, n_perm=6, seed=3, strata=labels)
    assert len(calls) == 3
    monkeypatch.setattr(module, "two_nearest", real)
    xs, ys = module.standardize(x), module.standardize(y)
    gen = torch.Generator().manual_seed(3)
    plain = [twonn(torch.cat([xs, ys[torch.randperm(300, generator=gen)]], 1)) for _ in range(6)]
    strat = [twonn(torch.cat([xs, ys[within_class_permutation(torch.as_tensor(labels), gen)]], 1)) for _ in range(6)]
    np.testing.assert_array_equal(res.id_perm, plain)
    np.testing.assert_array_equal(res.id_perm_stratified, strat)
