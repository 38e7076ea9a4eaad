"""Bad input fails early with the file or key and the fix: each case measured as a user met it (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.config import ConfigError, ModelSpec, load_yaml, validate_config
from featflow.models.checkpoint import CheckpointError, read_checkpoint, save_checkpoint, torch_file
from featflow.models.registry import build_model

MINIMAL = {
    "datasets": {"p": {"kind": "planted"}},
    "models": {"m": {"arch": "smallcnn", "dataset": "p"}},
    "experiments": {"e": {"model": "m", "dataset": "p", "layers": ["act"]}},
}


def with_(section: str, name: str, **values) -> dict:
    config = {key: {k: dict(v) for k, v in sub.items()} for key, sub in MINIMAL.items()}
    config[section][name].update(values)
    return config


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\ndatasets:\n  a: [1, 2\n  b: 3\n")
    with pytest.raises(ConfigError, match=rf"{bad}:4:4: YAML syntax error"):
        load_yaml(bad)


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- seed\n")
    with pytest.raises(ConfigError, match="mapping of keys at the top level"):
        load_yaml(listed)


def test_float_epochs_are_refused_by_the_schema() -> None:
    config = with_("models", "m", train={"epochs": 2.0})
    with pytest.raises(ConfigError, match=r"'models\.m\.train\.epochs': 2\.0 is not of type 'integer'"):
        validate_config(config)
    assert validate_config(with_("models", "m", train={"epochs": 2}))["models"]["m"]["train"]["epochs"] == 2


def test_an_empty_cifar10_folder_is_refused_before_any_job(tmp_path: Path) -> None:
    config = with_("datasets", "p", kind="cifar10", path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"'datasets\.p\.path'.*lacks cifar-10-batches-py/data_batch_1"):
        validate_config(config)
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (batches / name).write_bytes(b"x")
    with pytest.raises(ConfigError, match="lacks cifar-10-batches-py/batches.meta"):
        validate_config(config)
    (batches / "batches.meta").write_bytes(b"x")
    validate_config(config)


def test_an_imagefolder_without_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "val" / "cat").mkdir(parents=True)
    config = with_("datasets", "p", kind="imagefolder", path=str(tmp_path))
    with pytest.raises(ConfigError, match="holds no image file"):
        validate_config(config)


def test_a_text_file_as_weights_is_refused_at_validation_and_at_load(tmp_path: Path) -> None:
    text = tmp_path / "weights.pt"
    text.write_text("not weights\n")
    with pytest.raises(ConfigError, match=r"'models\.m\.weights'.*is not a torch\.save file"):
        validate_config(with_("models", "m", weights=str(text)))
    with pytest.raises(CheckpointError, match=rf"{text}: not a torch\.save file"):
        torch_file(text, "fix it")


def test_a_truncated_checkpoint_names_the_file_and_the_fix(tmp_path: Path) -> None:
    spec = ModelSpec.from_dict({"arch": "smallcnn", "dataset": "p", "width": 4})
    model = build_model(spec, (3, 16, 16), 3, torch.zeros(3), torch.ones(3))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, spec, (3, 16, 16), 3, {})
    assert read_checkpoint(path)["num_classes"] == 3
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{path}: .*rerun the train rule"):
        read_checkpoint(path)


def test_a_corrupted_hdf5_chunk_is_refused_not_read_silently(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    pixels = np.random.default_rng(0).integers(0, 256, size=(256, 3, 32, 32), dtype=np.uint8)
    store.write_h5(path, "dataset", {"x": pixels}, {})
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 65536] = bytes(65536)  # what once was read back with 65,570 changed pixels
    path.write_bytes(bytes(raw))
    with pytest.raises(store.StoreError, match=rf"{path}: corrupted .*delete it and rerun"):
        store.read_h5(path, "dataset")
