"""The shi generator (SPEC 4.1): balance, gamma, parity labels, normalization, and the file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from featflow.config import DatasetSpec, ShiSpec
from featflow.data import write_dataset
from featflow.data.shi import design_gamma, gamma, generate_shi, load_shi, parity_labels, sample_patterns


@pytest.mark.parametrize("p0", [0.5, 0.3])
def test_structured_family_is_balanced_with_the_designed_gamma(p0):
    spec = ShiSpec(d=40, D=20, k=5, p0=p0)
    phi = sample_patterns(spec, 40000, np.random.default_rng(0))
    y = parity_labels(phi, spec.k)
    assert abs(y.mean()) < 0.02  # (A0)
    np.testing.assert_allclose(gamma(phi, y, spec.k), design_gamma(spec), atol=0.015)  # (A1): (1 - p0) / 2
    np.testing.assert_allclose(phi[:, : spec.k].mean(axis=0), 0.5, atol=0.015)
    np.testing.assert_allclose(phi[:, spec.k :].mean(), p0, atol=0.01)  # (A2)
    outside = phi[:, spec.k :] - phi[:, spec.k :].mean(axis=0)
    corr = np.corrcoef(np.c_[outside[:, :4], phi[:, :2]].T)
    # patterns outside A uncorrelated with each other and with A (the A patterns are correlated among themselves)
    assert np.abs(corr[:4] - np.eye(6)[:4]).max() < 0.03


def test_unstructured_family_has_no_gamma():
    spec = ShiSpec(d=40, D=20, k=5, structured=False)
    phi = sample_patterns(spec, 40000, np.random.default_rng(1))
    y = parity_labels(phi, spec.k)
    assert abs(y.mean()) < 0.02
    assert np.abs(gamma(phi, y, spec.k)).max() < 0.015
    np.testing.assert_allclose(phi.mean(), 0.5, atol=0.01)


def test_parity_labels():
    phi = np.array([[0, 0, 0, 1], [1, 0, 0, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(parity_labels(phi, 3), [-1, 1, -1, 1])


def test_normalization_uses_the_training_mean_and_sigma():
    spec = ShiSpec(d=50, D=20, k=5)
    train, test, m = generate_shi(spec, 3000, 500, np.random.default_rng(2))
    np.testing.assert_allclose(m.T @ m, np.eye(spec.D), atol=1e-5)
    mean_phi = train.phi.mean(axis=0)
    sigma = np.sqrt(train.phi.var(axis=0).sum())  # sum_i Var(x~_i) = sum_j Var(phi~_j) for orthonormal M
    np.testing.assert_allclose(train.x, (train.phi - mean_phi) @ m.T / sigma, atol=1e-5)
    np.testing.assert_allclose(test.x, (test.phi - mean_phi) @ m.T / sigma, atol=1e-5)
    np.testing.assert_allclose(train.x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose((train.x**2).sum(axis=1).mean(), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(train.y, parity_labels(train.phi, spec.k))


@pytest.mark.parametrize("bad", [dict(k=4), dict(p0=0.7), dict(D=60)])
def test_bad_specs_are_refused(bad):
    with pytest.raises(ValueError, match="shi"):
        generate_shi(ShiSpec(**{"d": 50, "D": 20, "k": 5, **bad}), 10, 10, np.random.default_rng(0))


def test_file_round_trip(tmp_path):
    spec = DatasetSpec.from_dict(
        {"kind": "shi", "n_train": 64, "n_test": 32, "seed": 3, "shi": {"d": 30, "D": 10, "k": 3, "p0": 0.4}}
    )
    write_dataset(spec, tmp_path / "shi.h5", {"config": spec.to_dict()})
    data = load_shi(tmp_path / "shi.h5")
    assert data.spec == spec.shi
    assert data.train.x.shape == (64, 30) and data.test.y.shape == (32,)
    np.testing.assert_array_equal(data.train.y, parity_labels(data.train.phi, 3))
    eff = data.effective_features
    np.testing.assert_allclose(eff[0], -eff[1])
    np.testing.assert_allclose(np.linalg.norm(eff, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(data.sigma2, data.train.phi.var(axis=0).sum(), rtol=1e-6)
