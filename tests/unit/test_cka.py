"""Feature-space CKA matches the N x N kernel formula; masked CKA and redundancy invariants."""

import numpy as np
import pytest

from featflow.metrics.cka import feature_cka, linear_cka, redundancy


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
    assert np.isfinite(redundancy(spread, z, 0.0, 3, np.random.default_rng(0))).all()
