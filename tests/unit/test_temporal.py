"""Complexity over training: emergence epochs of known curves, Hungarian matching of a permuted dictionary, the
sign of the rank correlation between K and emergence, the fraction of decreasing K."""

from __future__ import annotations

import numpy as np
import pytest

from featflow.metrics.stats import spearman_ci
from featflow.temporal.emergence import decreasing_fraction, emergence_epoch, match, matched_values

EPOCHS = np.array([0, 1, 3, 6, 12])


def test_emergence_epoch_of_synthetic_curves():
    curves = np.array(
        [
            [0.95, 0.10, 0.0, 0.5, np.nan, 0.2],
            [0.99, 0.20, 0.0, np.nan, 0.3, 0.95],  # feature 5 overshoots early: reaching 90% counts
            [1.00, 0.50, 0.0, 0.89, 0.3, 0.5],
            [1.00, 0.91, 0.0, 0.90, 0.3, 0.6],
            [1.00, 1.00, 0.0, 1.00, np.nan, 1.0],
        ]
    )
    out = emergence_epoch(curves, EPOCHS, 0.9)
    np.testing.assert_array_equal(out[:4], [0, 6, np.nan, 6])  # 0.89 < 0.9, NaN counts as not reached
    assert np.isnan(out[4]) and out[5] == 1  # a feature never decodable at the end never emerges
    np.testing.assert_array_equal(emergence_epoch(curves, EPOCHS, 1.0)[[0, 1, 3]], [3, 12, 12])
    np.testing.assert_array_equal(emergence_epoch(curves, EPOCHS, 0.45)[[0, 1, 3]], [0, 3, 0])


def test_emergence_epoch_checks_its_inputs():
    with pytest.raises(ValueError, match="one row per epoch"):
        emergence_epoch(np.zeros((3, 2)), EPOCHS, 0.9)
    with pytest.raises(ValueError, match="fraction"):
        emergence_epoch(np.zeros((5, 2)), EPOCHS, 0.0)
    with pytest.raises(ValueError, match="not increasing"):
        emergence_epoch(np.zeros((5, 2)), EPOCHS[::-1], 0.9)


def test_hungarian_matching_recovers_a_permuted_dictionary():
    rng = np.random.default_rng(0)
    final = rng.random((40, 16))
    perm = rng.permutation(40)
    earlier = 3.0 * final[perm] + 0.02 * rng.random((40, 16))  # same directions, another scale, a little noise
    rows, cols, cos = match(earlier, final)
    np.testing.assert_array_equal(rows, np.arange(40))
    np.testing.assert_array_equal(cols, perm)
    assert cos.min() > 0.99
    k = rng.random(40)
    np.testing.assert_allclose(matched_values(k[perm], rows, cols, 40), k)  # values land on their final feature
    rows, cols, _ = match(earlier[:10], final)  # a smaller dictionary: each of its atoms finds its own
    np.testing.assert_array_equal(cols, perm[:10])
    placed = matched_values(np.ones(10), rows, cols, 40)
    assert np.isnan(placed).sum() == 30 and np.all(placed[perm[:10]] == 1)
    with pytest.raises(ValueError, match="dimension"):
        match(earlier[:, :8], final)


def test_rank_correlation_sign_simple_first():
    rng = np.random.default_rng(1)
    k = rng.random(200)
    simple_first = np.digitize(k + 0.1 * rng.normal(size=200), [0.25, 0.5, 0.75]).astype(float)
    assert spearman_ci(k, simple_first).low > 0.5
    assert spearman_ci(k, -simple_first).high < -0.5


def test_decreasing_fraction():
    first = np.array([0.5, 0.5, 0.5, np.nan, 0.2])
    last = np.array([0.4, 0.6, 0.1, 0.1, np.nan])
    assert decreasing_fraction(first, last) == (pytest.approx(2 / 3), 3)
    frac, n = decreasing_fraction(np.array([np.nan]), np.array([1.0]))
    assert np.isnan(frac) and n == 0
