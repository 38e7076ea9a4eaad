"""Issue 26.5: the per-activation importance E[|<d_i, w_c>| | z_i > 0] and the partial Spearman rho(K, |Gamma| |
mean code), which separate "simple features are important" from "simple features have large codes"."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from featflow.metrics.importance import active_alignment, importance
from featflow.metrics.stats import partial_spearman_ci, spearman_ci


def test_per_activation_importance_averages_the_alignment_over_the_active_samples_only() -> None:
    codes = torch.tensor([[0.0, 2.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    atoms = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    weight = torch.tensor([[2.0, -1.0], [-3.0, 0.5]], dtype=torch.float64)  # (C, d): <d_i, w_c> = weight[c, i]
    classes = torch.tensor([0, 1, 0, 1])
    total, count = active_alignment(codes, atoms, weight[classes])
    # feature 0 active in samples 1 (class 1: |-3|) and 2 (class 0: |2|); feature 1 in sample 0 (class 0: |-1|)
    torch.testing.assert_close(total / count, torch.tensor([2.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(count, torch.tensor([2.0, 1.0], dtype=torch.float64))
    # Gamma grows with the code, the per-activation importance does not
    scaled = active_alignment(10 * codes, atoms, weight[classes])
    torch.testing.assert_close(scaled[0] / scaled[1], total / count)
    signed = importance(codes, atoms, weight[classes])[0]
    torch.testing.assert_close(importance(10 * codes, atoms, weight[classes])[0], 10 * signed)


def test_partial_spearman_equals_the_three_variable_closed_form() -> None:
    """rho(x, y | z) = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)) on Spearman's r."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=300)
    x, y = np.exp(z + rng.normal(size=300)), z**3 + 0.5 * rng.normal(size=300)
    r = lambda a, b: spearmanr(a, b).statistic  # noqa: E731
    closed = (r(x, y) - r(x, z) * r(y, z)) / np.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
    got = partial_spearman_ci(x, y, z, resamples=200)
    np.testing.assert_allclose(got.rho, closed, rtol=1e-12)
    assert got.low <= got.rho <= got.high and got.n == 300


def test_partial_spearman_removes_a_shared_driver_and_keeps_a_direct_link() -> None:
    """Two noisy monotone readouts of one driver are rank-correlated (~0.5) but independent given it; a
    direct link survives the conditioning."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=2000)
    x, y = z + rng.normal(size=2000), np.tanh(z + rng.normal(size=2000))
    assert spearman_ci(x, y, resamples=200).rho > 0.3
    assert abs(partial_spearman_ci(x, y, z, resamples=200).rho) < 0.06
    w = x + 0.3 * rng.normal(size=2000)
    assert partial_spearman_ci(x, w, z, resamples=200).rho > 0.8


def test_partial_spearman_needs_varying_finite_values() -> None:
    rng = np.random.default_rng(2)
    x, y, z = rng.normal(size=(3, 40))
    x[3] = np.nan
    assert np.isnan(partial_spearman_ci(x, y, np.ones(40)).rho)
    assert partial_spearman_ci(x, y, z, resamples=50).n == 39


def test_importance_claim_reports_the_mean_code_and_the_partial_rho(tmp_path) -> None:
    """A table where |importance| follows K only through the mean code: the claim's value stays rho(K,
    |importance|), its reason gives rho(K, mean code) and a partial rho near 0 beside it."""
    import re

    import pandas as pd

    from featflow import store
    from featflow.claims.complexity import read_importance
    from featflow.claims.core import Source, Unit

    rng = np.random.default_rng(3)
    k = rng.uniform(0, 1, 200)
    code = np.exp(-2 * k + 0.3 * rng.normal(size=200))
    table = pd.DataFrame({"complexity": k, "importance_abs": code * rng.uniform(0.5, 1.5, 200), "mean_code": code})
    path = tmp_path / "features.parquet"
    store.write_table(table, path.with_suffix(".csv"), path)
    reading = read_importance(Unit("complexity", "planted", 0, "planted", {"table": str(path)}), Source())
    assert reading.ok and reading.value == pytest.approx(spearmanr(k, table["importance_abs"]).statistic)
    by_code = float(re.search(r"rho\(K, mean code\) ([+-]\d\.\d\d)", reading.reason).group(1))
    partial = float(re.search(r"mean code\) ([+-]\d\.\d\d) \[", reading.reason.split(";")[-1]).group(1))
    assert by_code < -0.8 and abs(partial) < 0.15
