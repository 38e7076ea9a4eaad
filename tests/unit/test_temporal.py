"""Complexity over training: emergence on the learned part of known curves (epoch 0 the untrained control), the
planted order refused on factors readable at initialization, Hungarian matching of a permuted dictionary, the
sign test of sedimentation with one dictionary recipe, and epoch 0 as the run's initial weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binom

from featflow import store
from featflow.complexity.spec import ComplexitySpec, VinfoSpec
from featflow.config import DatasetSpec, ModelSpec, TrainSpec
from featflow.data import load_split, write_dataset
from featflow.metrics.stats import spearman_ci
from featflow.models.checkpoint import read_checkpoint, save_checkpoint
from featflow.models.registry import build_model
from featflow.models.train import channel_stats, train_model
from featflow.temporal.emergence import (
    emergence_epoch,
    gains,
    match,
    matched_values,
    planted_order,
    readable_at_init,
    sign_test,
)
from featflow.temporal.run import _sedimentation, sediment_epoch
from featflow.temporal.spec import SedimentSpec, TemporalSpec

EPOCHS = np.array([0, 1, 3, 6, 12])
PLANTED = ("color", "orientation", "parity")


def test_emergence_on_the_learned_part():
    curves = np.array(
        [
            [0.96, 0.10, 0.0, 0.5, 0.2, 0.40],  # epoch 0: the untrained network
            [0.99, 0.20, 0.0, np.nan, 0.95, 0.41],  # feature 4 overshoots early: reaching 90% of its gain counts
            [1.00, 0.50, 0.0, 0.90, 0.5, 0.42],
            [1.00, 0.92, 0.0, 0.94, 0.6, 0.43],
            [1.00, 1.00, 0.0, 1.00, 1.0, 0.43],
        ]
    )
    out = emergence_epoch(curves, EPOCHS, 0.9, min_gain=0.05)
    # feature 0 gains 0.04 (< min_gain): no emergence, although the old rule called it "emerged at 0"
    # feature 1: 0.92 - 0.10 >= 0.9 x 0.90 at epoch 6; feature 3: 0.94 - 0.5 = 0.44 < 0.45 until the end
    np.testing.assert_array_equal(out, [np.nan, 6, np.nan, 12, 1, np.nan])
    assert not np.any(out == 0)  # epoch 0 never counts: it is the control
    np.testing.assert_array_equal(gains(curves, 0.05), [False, True, False, True, True, False])
    np.testing.assert_array_equal(emergence_epoch(curves, EPOCHS, 0.4, min_gain=0.0)[[1, 3, 5]], [3, 3, 3])
    np.testing.assert_array_equal(readable_at_init(curves, EPOCHS, 0.9), [True, False, False, False, False, True])


def test_emergence_checks_its_inputs():
    with pytest.raises(ValueError, match="one row per epoch"):
        emergence_epoch(np.zeros((3, 2)), EPOCHS, 0.9, 0.05)
    with pytest.raises(ValueError, match="fraction"):
        emergence_epoch(np.zeros((5, 2)), EPOCHS, 0.0, 0.05)
    with pytest.raises(ValueError, match="not increasing"):
        emergence_epoch(np.zeros((5, 2)), EPOCHS[::-1], 0.9, 0.05)
    with pytest.raises(ValueError, match="add 0 to the model's train.checkpoints"):
        emergence_epoch(np.zeros((4, 2)), EPOCHS[1:], 0.9, 0.05)


def test_planted_order_is_not_called_on_a_factor_readable_at_initialization():
    """Color decodable from the untrained network (I_V 0.99 of 1.00) has no emergence to order: the check is
    inconclusive and names it; without it the order is called on what training adds."""
    learned = np.array([[0.05, 0.10, 0.0], [0.80, 0.50, 0.1], [1.00, 0.92, 0.3], [1.0, 1.0, 0.6], [1.0, 1.0, 0.9]])
    assert planted_order(learned, EPOCHS, PLANTED, PLANTED, 0.9, 0.05) == "holds"
    readable = learned.copy()
    readable[0, 0] = 0.99
    status = planted_order(readable, EPOCHS, PLANTED, PLANTED, 0.9, 0.05)
    assert status.startswith("inconclusive") and "color" in status and "readable at initialization" in status
    assert planted_order(learned[:, ::-1], EPOCHS, PLANTED, PLANTED, 0.9, 0.05) == "VIOLATED"
    flat = learned.copy()
    flat[:, 2] = 0.0  # parity never learned
    assert "no gain" in planted_order(flat, EPOCHS, PLANTED, PLANTED, 0.9, 0.05)
    assert planted_order(learned[:, :2], EPOCHS, PLANTED[:2], PLANTED, 0.9, 0.05) == "n/a"


def test_rank_correlation_of_k_and_initial_decodability():
    """rho(K, I_V_0) < 0 when simple features are readable without training; rho(K, emergence) > 0 when the
    simple ones are learned first."""
    rng = np.random.default_rng(1)
    k = rng.random(200)
    simple_first = np.digitize(k + 0.1 * rng.normal(size=200), [0.25, 0.5, 0.75]).astype(float)
    assert spearman_ci(k, simple_first).low > 0.5
    assert spearman_ci(k, 1 - k + 0.1 * rng.normal(size=200)).high < -0.5


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


def test_sign_test():
    first = np.array([0.5, 0.5, 0.5, np.nan, 0.2, 0.3])
    last = np.array([0.4, 0.6, 0.1, 0.1, np.nan, 0.3])  # ties and NaN left out
    frac, n, p = sign_test(first, last)
    assert (frac, n) == (pytest.approx(2 / 3), 3) and p == pytest.approx(1.0)
    down = np.r_[np.ones(45), np.zeros(19)]  # the recipe mismatch: 45 of 64 fall
    assert sign_test(down, 1 - down + 0.5 * down)[2] == pytest.approx(0.001563, abs=1e-6)
    frac, n, p = sign_test(np.array([1.0]), np.array([1.0]))
    assert np.isnan(frac) and n == 0 and np.isnan(p)


def test_epoch_0_checkpoint_is_the_runs_initialization(tmp_path: Path):
    """train_checkpoint at epoch 0 writes the untrained network of the same run: the seed's initial weights (the
    model the full run starts from), no history."""
    data = tmp_path / "planted.h5"
    write_dataset(DatasetSpec(kind="planted", n_train=40, n_test=20, image_size=16), data, {})
    spec = ModelSpec(arch="smallcnn", dataset="planted", width=4, train=TrainSpec(epochs=2, batch_size=16, seed=3))
    train_model(spec, data, tmp_path / "e0.pt", device=torch.device("cpu"), attrs={"stage": "train"}, epoch=0)
    saved = read_checkpoint(tmp_path / "e0.pt")
    train = load_split(data, "train")
    torch.manual_seed(3)
    init = build_model(spec, tuple(train.x.shape[1:]), saved["num_classes"], *channel_stats(train.x)).state_dict()
    assert saved["meta"]["epoch"] == 0 and saved["meta"]["history"] == []
    assert init.keys() == saved["state_dict"].keys()
    assert all(torch.equal(init[key], saved["state_dict"][key]) for key in init)


def _activations(path: Path, x: np.ndarray, weights: list[np.ndarray], head: torch.nn.Module) -> Path:
    """An activations file of a fixed random ReLU network (layers l1, l2, act) on inputs ``x``, its logits those
    of ``head`` reading act (as an extraction stores them)."""
    layers, h = {}, x
    for name, w in zip(("l1", "l2", "act"), weights, strict=True):
        h = np.maximum(h @ w, 0)
        layers[name] = h.astype(np.float32)
    n = x.shape[0]
    arrays = {
        "layers": layers,
        "labels": np.zeros(n, np.int64),
        "indices": np.arange(n),
        "logits": head(torch.from_numpy(layers["act"])).detach().numpy(),
    }
    store.write_h5(path, "activations", arrays, {"layers": list(layers), "accuracy": 1.0})
    return path


def test_the_final_model_against_itself_with_one_recipe(tmp_path: Path):
    """Issue 26, item 2: the final model against itself, a second fit of the one recipe (another NMF seed), is no
    sedimentation: the fraction of falling K lies inside the binomial 95% band around 1/2, and the summary's
    sedimentation reads that fraction from its checkpoint to the final model's dictionary of the same recipe."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(12, 24)) / 12**0.5, rng.normal(size=(24, 24)) / 24**0.5, rng.normal(size=(24, 32)) / 5]
    spec = ModelSpec(arch="smallcnn", dataset="planted", width=8, train=TrainSpec(epochs=1))
    net = build_model(spec, (3, 16, 16), 3)
    save_checkpoint(tmp_path / "net.pt", net, spec, (3, 16, 16), 3, {})
    train = _activations(tmp_path / "train.h5", rng.normal(size=(600, 12)), weights, net.body.fc)
    test = _activations(tmp_path / "test.h5", rng.normal(size=(600, 12)), weights, net.body.fc)
    cx = ComplexitySpec(vinfo=VinfoSpec(include_input=False))
    one = TemporalSpec(sediment=SedimentSpec(k=32, iterations=30))

    def fit(epoch: int, seed: int) -> Path:  # the same network at both "epochs", another NMF seed
        out = tmp_path / f"sediment_{epoch}.h5"
        sediment_epoch(
            train_acts=train,
            test_acts=test,
            data_path="",
            checkpoint=tmp_path / "net.pt",
            spec=cx,
            temporal=one,
            layer="act",
            epoch=epoch,
            out=out,
            device=torch.device("cpu"),
            attrs={},
            seed=seed,
        )
        return out

    _, numbers, _ = _sedimentation([fit(1, seed=1), fit(12, seed=0)], 12, one)
    frac, n, p = numbers["k_decreasing"], numbers["k_decreasing_n"], numbers["k_decreasing_p"]
    low, high = binom.ppf([0.025, 0.975], n, 0.5) / n
    assert n >= 30 and low <= frac <= high and p > 0.05, (frac, n, p)
