"""Data sets: deterministic, factors consistent with labels, the Shi model's stated properties."""

from __future__ import annotations

import numpy as np
import pytest

from featflow.config import DatasetSpec, ShiSpec
from featflow.data import build_dataset, load_split, write_dataset
from featflow.data.planted import generate_planted
from featflow.data.shi import gamma, generate_shi


def test_planted_is_deterministic_and_labels_follow_factors():
    a = generate_planted(64, 32, np.random.default_rng(5))
    b = generate_planted(64, 32, np.random.default_rng(5))
    for x, y in zip(a, b, strict=False):
        np.testing.assert_array_equal(x, y)
    images, labels, factors = a
    assert images.shape == (64, 3, 32, 32) and images.dtype == np.uint8
    color, orient, parity, count = factors.T
    np.testing.assert_array_equal(labels, 4 * color + 2 * orient + parity)
    np.testing.assert_array_equal(parity, count % 2)
    assert set(np.unique(count)) <= {1, 2, 3}


def test_planted_color_is_in_the_pixels_and_orientation_is_not():
    images, _, factors = generate_planted(400, 32, np.random.default_rng(0))
    x = images.astype(np.float32) / 255
    red_minus_blue = x[:, 0].mean(axis=(1, 2)) - x[:, 2].mean(axis=(1, 2))
    assert np.all((red_minus_blue > 0) == (factors[:, 0] == 0))  # warm backgrounds are red-dominant
    brightness = x.mean(axis=(1, 2, 3))
    gap = abs(brightness[factors[:, 1] == 0].mean() - brightness[factors[:, 1] == 1].mean())
    assert gap < 0.01  # both gratings have the same mean: orientation needs local filters


def test_write_and_load_round_trip(tmp_path):
    spec = DatasetSpec(kind="planted", n_train=32, n_test=16, seed=1)
    write_dataset(spec, tmp_path / "p.h5", {"stage": "data"})
    train = load_split(tmp_path / "p.h5", "train")
    assert train.x.shape == (32, 3, 32, 32) and 0 <= train.x.min() and train.x.max() <= 1
    assert train.num_classes == 8 and train.factor_names == ("color", "orientation", "parity", "count")
    ref = build_dataset(spec)
    np.testing.assert_array_equal(train.y.numpy(), ref.train.y)
    with pytest.raises(ValueError, match="expected 'train' or 'test'"):
        load_split(tmp_path / "p.h5", "val")


def test_digits_are_upsampled_real_digits():
    bundle = build_dataset(DatasetSpec(kind="digits", n_test=100, image_size=16, grayscale=True))
    assert bundle.train.x.shape[1:] == (1, 16, 16) and bundle.test.x.shape[0] == 100
    assert set(np.unique(bundle.train.y)) == set(range(10))


def test_cifar10_without_local_files_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1: CIFAR-10 batch not found"):
        write_dataset(DatasetSpec(kind="cifar10", path=str(tmp_path)), tmp_path / "c.h5", {})


def test_shi_structured_has_gamma_quarter_and_unit_norm():
    train, test, m = generate_shi(ShiSpec(d=60, D=20, k=5, p0=0.5), 20000, 100, np.random.default_rng(0))
    np.testing.assert_allclose(m.T @ m, np.eye(20), atol=1e-5)
    np.testing.assert_allclose(gamma(train.phi, train.y, 5), 0.25, atol=0.02)
    assert abs(train.y.mean()) < 0.03  # balanced classes
    np.testing.assert_allclose(train.phi.mean(axis=0), 0.5, atol=0.02)  # every marginal is 1/2
    np.testing.assert_allclose((train.x**2).sum(axis=1).mean(), 1.0, rtol=1e-3)
    np.testing.assert_array_equal(train.y, np.where(train.phi[:, :5].sum(1) % 2 == 1, 1, -1))


def test_shi_unstructured_has_no_gamma():
    train, _, _ = generate_shi(ShiSpec(d=60, D=20, k=5, structured=False), 20000, 10, np.random.default_rng(1))
    np.testing.assert_allclose(gamma(train.phi, train.y, 5), 0.0, atol=0.02)


def test_excluded_classes_leave_the_training_split_only():
    bundle = build_dataset(DatasetSpec(kind="planted", n_train=200, n_test=100, exclude_classes=(4,)))
    assert 4 not in bundle.train.y and 4 in bundle.test.y
    assert len(bundle.classes) == 8 and bundle.train.factors.shape[0] == bundle.train.y.shape[0]


def test_load_split_reads_only_the_requested_rows(tmp_path):
    from featflow.data import split_size

    write_dataset(DatasetSpec(kind="planted", n_train=40, n_test=16, seed=2), tmp_path / "p.h5", {})
    whole = load_split(tmp_path / "p.h5", "train")
    part = load_split(tmp_path / "p.h5", "train", slice(10, 25))
    assert split_size(tmp_path / "p.h5", "train") == 40
    assert part.x.shape[0] == 15
    assert (part.x == whole.x[10:25]).all() and (part.y == whole.y[10:25]).all()
    np.testing.assert_array_equal(part.factors, whole.factors[10:25])


class _CountingRng:
    """A numpy Generator that counts the draws asked of it."""

    def __init__(self, seed: int) -> None:
        self.rng, self.calls = np.random.default_rng(seed), 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.rng, name)


def test_planted_draws_per_factor_not_per_image():
    """Issue 28.6: synthesis is batched, the same number of draws for 10 images as for 300; each image shows
    exactly ``count`` green squares (4 x 4 pixels at 32 px) outside its grating."""
    small, large = _CountingRng(0), _CountingRng(0)
    generate_planted(10, 32, small)
    images, _, factors = generate_planted(300, 32, large)
    assert small.calls == large.calls
    x = images.astype(np.float32) / 255
    green = (x[:, 1] > 0.8) & (x[:, 0] < 0.3) & (x[:, 2] < 0.3)
    np.testing.assert_array_equal(green.sum((1, 2)), 16 * factors[:, 3])
