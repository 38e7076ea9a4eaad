"""Bad input fails early with the file or key and the fix: each case measured as a user met it (issue 11)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.config import ConfigError, DatasetSpec, ModelSpec, load_yaml, validate_config
from featflow.data import write_dataset
from featflow.data.images import BrokenImageError, check_image
from featflow.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint, torch_file
from featflow.models.registry import build_model
from featflow.models.train import _load_weights
from tests.folder_data import write_imagefolder

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
    with pytest.raises(CheckpointError, match=rf"{path}: corrupted checkpoint .*delete it and rerun .*train"):
        read_checkpoint(path)


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_a_checkpoint_with_4_kib_flipped_is_refused_by_its_content_hash(tmp_path: Path, where: float) -> None:
    """Once read back with 1,025 weights changed and no error (issue 24): the zip keeps size and structure."""
    spec = ModelSpec.from_dict({"arch": "smallcnn", "dataset": "p", "width": 16})
    model = build_model(spec, (3, 32, 32), 8, torch.zeros(3), torch.ones(3))
    path = tmp_path / "cnn.pt"
    save_checkpoint(path, model, spec, (3, 32, 32), 8, {"test_acc": 0.5, "history": [{"epoch": 1, "loss": 0.1}]})
    loaded, payload = load_checkpoint(path)  # intact: loads, weights equal
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    raw = bytearray(path.read_bytes())
    start = int(len(raw) * where)
    raw[start : start + 4096] = bytes(b ^ 0xFF for b in raw[start : start + 4096])
    path.write_bytes(bytes(raw))
    assert path.stat().st_size == len(raw)
    with pytest.raises(CheckpointError, match=rf"{path}: corrupted checkpoint .*delete it and rerun the stage"):
        load_checkpoint(path)


def test_every_damage_to_a_checkpoint_is_refused_with_the_named_error(tmp_path: Path) -> None:
    """torch.load's own errors on a damaged zip or pickle (UnpicklingError, RuntimeError, a pickle turned into
    another valid one) become the same named error wherever the flipped block lies; a flip that torch.load never
    reads (a zip header's alignment padding) reads back the very same content, as the verified hash proves."""
    spec = ModelSpec.from_dict({"arch": "smallcnn", "dataset": "p", "width": 4})
    model = build_model(spec, (3, 16, 16), 3, torch.zeros(3), torch.ones(3))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, spec, (3, 16, 16), 3, {})
    clean = path.read_bytes()
    refused = 0
    for start in range(0, len(clean), 512):
        raw = bytearray(clean)
        raw[start : start + 64] = bytes(b ^ 0x5A for b in raw[start : start + 64])
        path.write_bytes(bytes(raw))
        try:
            payload = read_checkpoint(path)
        except CheckpointError as err:
            assert re.match(rf"{path}: corrupted checkpoint .*delete it and rerun", str(err)), str(err)
            refused += 1
            continue
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in payload["state_dict"].items())
    assert refused >= len(clean) // 512 - 1


def test_a_featflow_checkpoint_as_weights_is_verified_and_a_plain_state_dict_is_not(tmp_path: Path) -> None:
    spec = ModelSpec.from_dict({"arch": "smallcnn", "dataset": "p", "width": 4})
    model = build_model(spec, (3, 16, 16), 3, torch.zeros(3), torch.ones(3))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, spec, (3, 16, 16), 3, {})
    payload = read_checkpoint(path)
    payload["state_dict"]["body.fc.bias"] = payload["state_dict"]["body.fc.bias"] + 1
    torch.save(payload, path)  # valid zip, stale hash
    with pytest.raises(CheckpointError, match=rf"{path}: corrupted checkpoint \(content hash"):
        _load_weights(
            build_model(spec, (3, 16, 16), 3, torch.zeros(3), torch.ones(3)), replace(spec, weights=str(path))
        )


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


def test_a_broken_image_is_named_by_the_data_job_not_a_later_worker(tmp_path: Path) -> None:
    """Once found only in a DataLoader worker's traceback of the train job (issue 24): the data job decodes every
    indexed file and names the broken one; no index is written."""
    root = write_imagefolder(tmp_path / "folder", classes=3, per_class=40, size=(32, 32))
    spec = DatasetSpec(kind="imagefolder", path=str(root), image_size=16)
    write_dataset(spec, tmp_path / "ok.h5", {})  # 240 intact files
    broken = root / "val" / "class0001" / "7.png"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated inside its pixel data
    with pytest.raises(BrokenImageError, match=rf"1 of 120 val images .*do not decode: {broken}: .*rerun the data job"):
        write_dataset(spec, tmp_path / "f.h5", {})
    assert not (tmp_path / "f.h5").exists() and not (tmp_path / "f.h5.tmp").exists()


def test_a_truncated_jpeg_that_pil_verify_passes_fails_its_decode(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "photo.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((320, 240)).save(path, quality=90)
    assert check_image(path) is None
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as image:
        image.verify()  # what a header check would accept
    assert "truncated" in check_image(path)
