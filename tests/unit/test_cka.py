"""Feature-space CKA matches the N x N kernel formula; masked CKA and redundancy invariants; redundancy against
the exact expectation over every mask, its stability over mask seeds, and the participation ratio's known answers."""

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import spearmanr

from featflow.complexity.spec import RedundancySpec
from featflow.metrics.cka import feature_cka, linear_cka, masked_redundancy, participation, redundancy
from featflow.metrics.moments import CoMoments


def kernel_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA with N x N linear kernels: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), H the centering matrix."""
    n = x.shape[0]
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float(np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_)))


def test_matches_kernel_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 7))
    y = x[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(size=(60, 4))
    assert linear_cka(x, y) == pytest.approx(kernel_cka(x, y), rel=1e-10)


def test_masked_feature_cka_matches_explicit_masking() -> None:
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(80, 6)), rng.random((80, 5))
    masks = (rng.random((4, 6)) > 0.5).astype(float)
    masks[:, 0] = 1.0
    got = feature_cka(x, z, masks)
    want = np.array([[kernel_cka(x * m, z[:, [i]]) for i in range(5)] for m in masks])
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_redundancy_of_duplicated_signal() -> None:
    rng = np.random.default_rng(2)
    s = rng.normal(size=(500, 1))
    spread = np.tile(s, (1, 16)) + 0.01 * rng.normal(size=(500, 16))  # the signal copied in every neuron
    single = np.c_[s, rng.normal(size=(500, 15))]  # the signal in one neuron only
    z = np.abs(s)
    r_spread = redundancy(spread, s, 0.5, 200, np.random.default_rng(0))
    r_single = redundancy(single, s, 0.5, 200, np.random.default_rng(0))
    assert r_spread[0] == pytest.approx(1.0, abs=0.02)
    assert r_single[0] < 0.8
    assert np.isfinite(redundancy(spread, z, 0.0, 20, np.random.default_rng(0))).all()


def exact_redundancy(x: np.ndarray, z: np.ndarray, drop: float) -> np.ndarray:
    """E_m[CKA(x m, z_i)] / CKA(x, z_i) over every one of the 2^d keep-masks, weighted by its probability."""
    d = x.shape[1]
    masks = (np.arange(1, 2**d)[:, None] >> np.arange(d) & 1).astype(float)  # the empty mask: CKA undefined
    prob = (1 - drop) ** masks.sum(1) * drop ** (d - masks.sum(1))
    return prob @ feature_cka(x, z, masks) / prob.sum() / feature_cka(x, z)[0]


def _layer(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Correlated neurons of unequal variance: neurons differ in how much Gram energy they share."""
    return np.maximum(rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d))) * rng.uniform(0.5, 2, d), 0)


def test_redundancy_matches_exact_enumeration_of_masks() -> None:
    rng = np.random.default_rng(3)
    x = _layer(rng, 400, 8)
    z = np.maximum(x @ rng.random((8, 12)) + rng.normal(size=(400, 12)), 0)
    exact = exact_redundancy(x, z, 0.3)
    got = redundancy(x, z, 0.3, 20000, np.random.default_rng(0))
    np.testing.assert_allclose(got, exact, atol=2e-3)  # features spread 0.036 here
    gap = (got - got.mean()) - (exact - exact.mean())  # the differences between features, which set the ranks
    assert np.abs(gap).max() < 1e-3


def test_redundancy_says_which_neurons_not_how_many() -> None:
    """On orthogonal neurons of equal variance every neuron weighs the same, so a feature carried by one neuron and
    one spread evenly over all get the same redundancy; the participation ratio tells them apart (1 vs d)."""
    rng = np.random.default_rng(4)
    d = 8
    x, _ = np.linalg.qr(rng.normal(size=(200, d)) - rng.normal(size=(200, d)).mean(0))
    x, _ = np.linalg.qr(x - x.mean(0))  # centered orthonormal columns: X^T X = I
    z = np.c_[x[:, 0], x.sum(1), x[:, :3] @ [3.0, 1.0, 0.5]]
    exact = exact_redundancy(x, z, 0.5)
    assert np.ptp(exact) < 1e-12
    assert np.ptp(redundancy(x, z, 0.5, 4000, np.random.default_rng(0))) < 2e-3
    part = participation(x.T @ (z - z.mean(0)))
    np.testing.assert_allclose(part[:2], [1.0, d], rtol=1e-9)
    assert 1.0 < part[2] < 3.0


def test_rho_k_redundancy_settles_over_mask_seeds_at_the_default_mask_count() -> None:
    """Features differ by a few 1e-3 (as on the trained cnn): the plain mean of 50 masks ranks them by the draw
    (rho over 5 mask seeds ranges > 0.1); the default mask count with the regression estimate ranges < 0.05."""
    rng = np.random.default_rng(0)
    n, d, k = 1000, 32, 64
    x = _layer(rng, n, d)
    z = np.maximum(x @ np.maximum(rng.normal(size=(d, k)), 0) + rng.normal(size=(n, k)), 0)
    moments = CoMoments(d, k)
    moments.update(x, z)
    converged = masked_redundancy(moments, 0.5, 50000, np.random.default_rng(99))
    assert 0.003 < converged.std() < 0.02
    k_feat = converged + rng.normal(0, 1.5 * converged.std(), k)  # a complexity that tracks redundancy, rho ~ 0.45

    def rho_range(estimate: Callable[[np.random.Generator], np.ndarray]) -> float:
        return float(np.ptp([spearmanr(k_feat, estimate(np.random.default_rng([0, s]))).statistic for s in range(5)]))

    def plain_mean(masks: int, rng: np.random.Generator) -> np.ndarray:
        drawn = (rng.random((masks, d)) >= 0.5).astype(float)
        return np.nanmean(feature_cka(x, z, drawn), 0) / feature_cka(x, z)[0]

    default = RedundancySpec().masks
    assert rho_range(lambda r: plain_mean(50, r)) > 0.1
    assert rho_range(lambda r: masked_redundancy(moments, 0.5, default, r)) < 0.05


def test_too_few_masks_for_the_regression_is_refused() -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match=r"redundancy.masks 9: expected >= 12"):
        redundancy(rng.random((30, 10)), rng.random((30, 2)), 0.5, 9, rng)
