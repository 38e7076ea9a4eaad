"""Checkpoints over training are snapshots of the one training run: the run stopped after e epochs (same cosine
schedule over all epochs, same seed, same batch order) is exactly the full run's state after e epochs."""

from __future__ import annotations

import copy

import pytest
import torch

from featflow.config import ConfigError, DatasetSpec, ModelSpec, TrainSpec, validate_config
from featflow.data import load_split, write_dataset
from featflow.models import load_checkpoint
from featflow.models.checkpoint import read_checkpoint
from featflow.models.registry import build_model
from featflow.models.train import channel_stats, fit, train_model

SPEC = ModelSpec(arch="smallcnn", dataset="planted", width=4, train=TrainSpec(epochs=3, batch_size=16, lr=0.05))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "planted.h5"
    write_dataset(DatasetSpec(kind="planted", n_train=80, n_test=40, image_size=16), path, {})
    return path


def _run(data, stop_after=None, on_epoch=None):
    train, test = load_split(data, "train"), load_split(data, "test")
    torch.manual_seed(SPEC.train.seed)
    model = build_model(SPEC, tuple(train.x.shape[1:]), 8, *channel_stats(train.x))
    generator = torch.Generator().manual_seed(SPEC.train.seed)
    history = fit(model, train, test, SPEC, torch.device("cpu"), generator, stop_after, on_epoch)
    return model, history


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stopped_run_equals_the_full_run_after_as_many_epochs(data):
    states = {}
    full, history = _run(data, on_epoch=lambda e, m: states.__setitem__(e, copy.deepcopy(m.state_dict())))
    assert sorted(states) == [1, 2, 3]
    for epoch in (1, 2):
        stopped, part = _run(data, stop_after=epoch)
        assert _equal(stopped.state_dict(), states[epoch]), f"epoch {epoch}: not the full run's state"
        assert part == history[:epoch]  # same losses, learning rates and accuracies on the way
    assert not _equal(states[1], states[2])
    init, _ = _run(data, stop_after=0)
    assert not _equal(init.state_dict(), states[1])
    with pytest.raises(ValueError, match="stop_after 4"):
        _run(data, stop_after=4)


def test_checkpoint_at_the_last_epoch_is_the_final_model(data, tmp_path):
    final = train_model(SPEC, data, tmp_path / "final.pt", device=torch.device("cpu"), attrs={"stage": "train"})
    last = train_model(SPEC, data, tmp_path / "e3.pt", device=torch.device("cpu"), attrs={"stage": "train"}, epoch=3)
    first = train_model(SPEC, data, tmp_path / "e1.pt", device=torch.device("cpu"), attrs={"stage": "train"}, epoch=1)
    assert last == final
    a, b = read_checkpoint(tmp_path / "final.pt"), read_checkpoint(tmp_path / "e3.pt")
    assert _equal(a["state_dict"], b["state_dict"])
    e1 = read_checkpoint(tmp_path / "e1.pt")
    assert e1["meta"]["epoch"] == 1 and a["meta"]["epoch"] == 3 and len(e1["meta"]["history"]) == 1
    assert {"train_acc", "test_acc"} <= set(e1["meta"]) and e1["meta"]["test_acc"] == first["test_acc"]
    model, _ = load_checkpoint(tmp_path / "e1.pt")
    assert _equal({k: v for k, v in model.state_dict().items()}, e1["state_dict"])


def _config(checkpoints, **model):
    return {
        "datasets": {"planted": {"kind": "planted"}},
        "models": {
            "cnn": {
                "arch": "smallcnn",
                "dataset": "planted",
                "train": {"epochs": 4, "checkpoints": checkpoints},
                **model,
            }
        },
        "experiments": {"planted": {"model": "cnn", "dataset": "planted", "layers": ["act"]}},
    }


def test_checkpoint_epochs_are_checked():
    assert validate_config(_config([0, 2]))["models"]["cnn"]["train"]["checkpoints"] == [0, 2]
    with pytest.raises(ConfigError, match=r"train.checkpoints': epochs \[5\] lie beyond"):
        validate_config(_config([1, 5]))
    with pytest.raises(ConfigError, match="checkpoints"):
        validate_config(_config([-1]))
