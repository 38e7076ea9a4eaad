"""Training reaches high accuracy on an easy problem; extraction writes what the network computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow import store
from featflow.activations import extract_to_h5, pool
from featflow.config import ActivationsSpec, DatasetSpec, ModelSpec, TrainSpec
from featflow.data import write_dataset
from featflow.models import load_checkpoint
from featflow.models.train import train_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained on digits (real handwritten digits, 16 x 16 grayscale)."""
    tmp = tmp_path_factory.mktemp("train")
    write_dataset(DatasetSpec(kind="digits", n_test=300, image_size=16, grayscale=True), tmp / "d.h5", {})
    spec = ModelSpec(arch="smallcnn", dataset="digits", width=8, train=TrainSpec(epochs=4, batch_size=32, lr=0.05))
    result = train_model(spec, tmp / "d.h5", tmp / "m.pt", device=torch.device("cpu"), attrs={"stage": "train"})
    return tmp, result


def test_training_learns_digits(trained):
    _, result = trained
    assert result["test_acc"] > 0.85


def test_pool_modes():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    torch.testing.assert_close(pool(x, "gap"), x.mean(dim=(2, 3)))
    assert pool(x, "grid2").shape == (2, 12)
    torch.testing.assert_close(pool(x, "grid2")[:, 0], x[:, 0, :2, :2].mean(dim=(1, 2)))
    with pytest.raises(ValueError, match="activations.pool 'max'"):
        pool(x, "max")


def test_extraction_matches_the_network(trained):
    tmp, _ = trained
    spec = ActivationsSpec(pool="gap", batch_size=64, max_samples=100)
    extract_to_h5(
        tmp / "m.pt",
        tmp / "d.h5",
        "test",
        ["block1", "act"],
        spec,
        tmp / "a.h5",
        device=torch.device("cpu"),
        attrs={"stage": "activations"},
    )
    data = store.read_h5(tmp / "a.h5", "activations")
    model, _ = load_checkpoint(tmp / "m.pt")
    x = torch.from_numpy(store.read_h5(tmp / "d.h5")["test"]["x"][:100]).float() / 255
    with torch.no_grad():
        logits = model(x)
        hidden = model.body.act(
            model.body.fc1(
                model.body.pool(model.body.block3(model.body.block2(model.body.block1((x - model.mean) / model.std))))
            )
        )
    np.testing.assert_allclose(data["logits"], logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(data["layers"]["act"], hidden.numpy(), rtol=1e-4, atol=1e-5)
    assert data["layers"]["block1"].shape == (100, 8) and data["labels"].shape == (100,)
    assert store.read_attrs(tmp / "a.h5")["layers"] == ["block1", "act"]


def test_misspelled_layer_fails_before_extraction(trained, tmp_path):
    tmp, _ = trained
    with pytest.raises(ValueError, match="layer 'blok1' not found"):
        extract_to_h5(
            tmp / "m.pt",
            tmp / "d.h5",
            "test",
            ["blok1"],
            ActivationsSpec(),
            tmp_path / "a.h5",
            device=torch.device("cpu"),
            attrs={},
        )
    assert not (tmp_path / "a.h5").exists()
