"""V-information equals R^2 on a linear-Gaussian toy; agrees with scikit-learn's Ridge; complexity ranks."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featflow.metrics.vinfo import complexity, ridge_r2, split_indices, v_information


def test_equals_known_r2_on_linear_gaussian() -> None:
    rng = np.random.default_rng(0)
    n, d = 20000, 5
    x = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    signal = x @ w
    targets = [0.2, 0.5, 0.9]  # R^2 = Var(signal) / (Var(signal) + noise variance)
    z = np.stack([signal + rng.normal(size=n) * np.sqrt(w @ w * (1 - r) / r) for r in targets], 1)
    iv = v_information({"x": x}, z * np.array([1.0, 30.0, 0.01]))  # scale-free: codes are standardized
    np.testing.assert_allclose(iv[0], targets, atol=0.02)


def test_matches_sklearn_ridge_per_feature() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 12)) + 1.0
    z = np.abs(x[:, :3] @ rng.normal(size=(3, 7)) + rng.normal(size=(500, 7)))
    train, test = split_indices(500, 0.2, seed=3)
    xc = x[train] - x[train].mean(0)
    lam = 1e-3 * np.trace(xc.T @ xc) / x.shape[1]
    ours = ridge_r2(x, z, train, test)
    for i in range(z.shape[1]):
        ref = Ridge(alpha=lam).fit(x[train], z[train, i])
        assert ours[i] == pytest.approx(r2_score(z[test, i], ref.predict(x[test])), abs=1e-10)


def test_complexity_and_bounds() -> None:
    rng = np.random.default_rng(2)
    x_early, x_late = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    z = np.stack([x_early[:, 0], x_late[:, 0] ** 2, np.ones(2000)], 1)  # linear early, nonlinear, constant
    iv = v_information({"early": x_early, "late": np.c_[x_late, x_late[:, :1] ** 2, x_early]}, z)
    assert np.all((iv[:, :2] >= 0) & (iv[:, :2] <= 1))
    assert np.isnan(iv[:, 2]).all()
    k = complexity(iv)
    assert k[0] < k[1]
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(10, 1.5, 0)


def test_identical_layers_are_merged_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A block and its global average pool give the same vectors under pool: gap; K must count them once."""
    from featflow.metrics.vinfo import distinct_layers

    rng = np.random.default_rng(0)
    block, act = rng.random((50, 4)), rng.random((50, 3))
    kept, merged = distinct_layers({"input": rng.random((50, 4)), "block3": block, "pool": block.copy(), "act": act})
    assert list(kept) == ["input", "block3", "act"] and merged == {"pool": "block3"}
    assert "identical" in caplog.text
