"""Folder data sets are indexed, not copied, and read straight from the source in order, batch by batch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from featflow import store
from featflow.activations import extract_shard_to_h5, extract_to_h5, merge_shards
from featflow.config import ActivationsSpec, DatasetSpec, ModelSpec
from featflow.data import batches, describe, load_split, split_size, write_dataset
from featflow.models import build_model, forward_to
from featflow.models.checkpoint import save_checkpoint
from tests.folder_data import CIFAR10_CLASSES, write_cifar10, write_imagefolder


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=20)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_imagefolder(tmp_path_factory.mktemp("folder"), classes=3, per_class=5, size=(40, 48))


def test_cifar10_is_indexed_and_read_from_the_batches(cifar: Path, tmp_path: Path) -> None:
    spec = DatasetSpec(kind="cifar10", path=str(cifar), n_train=30, n_test=50, exclude_classes=(4,))
    write_dataset(spec, tmp_path / "c.h5", {})
    index = store.read_h5(tmp_path / "c.h5", "dataset")
    assert "x" not in index["train"]  # no pixels copied
    assert len(index["test"]["y"]) == 20 and not np.isin(index["train"]["y"], [4]).any()
    raw = pickle.loads((cifar / "cifar-10-batches-py" / "test_batch").read_bytes())
    images = raw["data"].reshape(-1, 3, 32, 32)
    test = load_split(tmp_path / "c.h5", "test")
    picked = index["test"]["source_index"]
    np.testing.assert_allclose(test.x.numpy(), images[picked] / np.float32(255), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(test.y.numpy(), np.asarray(raw["labels"])[picked])
    batches_ = [pickle.loads((cifar / "cifar-10-batches-py" / f"data_batch_{i}").read_bytes()) for i in range(1, 6)]
    train_images = np.concatenate([b["data"] for b in batches_]).reshape(-1, 3, 32, 32)
    picked = index["train"]["source_index"]
    assert len(picked) < 30 and len(np.unique(picked)) == len(picked)  # 30 of 100 drawn, class 4 then dropped
    assert not np.all(np.diff(picked) > 0)  # stored in a seeded random order, not the source's
    np.testing.assert_allclose(load_split(tmp_path / "c.h5", "train").x.numpy(), train_images[picked] / 255, atol=1e-7)
    assert describe(tmp_path / "c.h5")[:2] == ((3, 32, 32), CIFAR10_CLASSES)


def test_imagefolder_reads_files_with_the_preprocessing(folder: Path, tmp_path: Path) -> None:
    write_dataset(
        DatasetSpec(kind="imagefolder", path=str(folder), n_train=8, n_test=15, image_size=24), tmp_path / "f.h5", {}
    )
    index = store.read_h5(tmp_path / "f.h5", "dataset")
    assert len(index["train"]["files"]) == 8 and split_size(tmp_path / "f.h5", "test") == 15
    first = next(batches(tmp_path / "f.h5", "train", 8))
    reference = v2.Compose([v2.Resize(24), v2.CenterCrop(24), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])
    expected = torch.stack(
        [reference(Image.open(folder / "train" / f).convert("RGB")) for f in index["train"]["files"]]
    )
    torch.testing.assert_close(first.x, expected, rtol=0, atol=0)
    assert first.x.shape == (8, 3, 24, 24)
    np.testing.assert_array_equal(first.y.numpy(), index["train"]["y"])
    wide = next(batches(tmp_path / "f.h5", "train", 8, preprocess=(36, 32, v2.InterpolationMode.BILINEAR)))
    assert wide.x.shape == (8, 3, 32, 32)  # a model's own resize and crop


@pytest.mark.parametrize("workers", [0, 2])
def test_workers_stream_the_rows_in_order(folder: Path, tmp_path: Path, workers: int) -> None:
    write_dataset(DatasetSpec(kind="imagefolder", path=str(folder), n_test=15, image_size=16), tmp_path / "f.h5", {})
    whole = load_split(tmp_path / "f.h5", "test")
    parts = list(batches(tmp_path / "f.h5", "test", 4, slice(3, 14), workers=workers))
    assert [len(p.y) for p in parts] == [4, 4, 3]
    torch.testing.assert_close(torch.cat([p.x for p in parts]), whole.x[3:14], rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([p.y for p in parts]), whole.y[3:14])


def test_folder_extraction_streams_and_shards_merge_identically(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "f.h5"
    write_dataset(DatasetSpec(kind="imagefolder", path=str(folder), n_test=15, image_size=32, grayscale=True), data, {})
    shape, classes, _ = describe(data)
    assert shape == (1, 32, 32)
    spec = ModelSpec(arch="smallcnn", dataset="f", width=4)
    torch.manual_seed(0)
    model = build_model(spec, shape, len(classes))
    save_checkpoint(tmp_path / "m.pt", model, spec, shape, len(classes), {})
    single = ActivationsSpec(batch_size=4, workers=2)
    cpu = torch.device("cpu")
    extract_to_h5(
        tmp_path / "m.pt", data, "test", ["block1", "act"], single, tmp_path / "a.h5", device=cpu, attrs={"stage": "a"}
    )
    sharded = ActivationsSpec(batch_size=4, workers=0, shards=3)
    paths = [tmp_path / f"s{i}.h5" for i in range(3)]
    for i, path in enumerate(paths):
        extract_shard_to_h5(
            tmp_path / "m.pt", data, "test", ["block1", "act"], sharded, shard=i, out_path=path, device=cpu, attrs={}
        )
    merge_shards(paths, tmp_path / "merged.h5", {}, block=2)
    a, b = store.read_h5(tmp_path / "a.h5", "activations"), store.read_h5(tmp_path / "merged.h5", "activations")
    x = load_split(data, "test").x
    with torch.no_grad():
        np.testing.assert_allclose(a["layers"]["act"], forward_to(model.eval(), x, "act").numpy(), rtol=1e-5, atol=1e-6)
    for key in ("logits", "labels", "indices"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a["layers"]["block1"], b["layers"]["block1"], rtol=1e-5, atol=1e-6)
    with store.h5_reader(tmp_path / "a.h5") as handle:  # appended batch by batch: resizable, checksummed
        assert handle["layers/act"].maxshape[0] is None and handle["layers/act"].fletcher32


def test_load_split_reads_positions_in_any_order(folder: Path, tmp_path: Path) -> None:
    write_dataset(DatasetSpec(kind="imagefolder", path=str(folder), n_test=15, image_size=16), tmp_path / "f.h5", {})
    write_dataset(DatasetSpec(kind="planted", n_train=20, n_test=12), tmp_path / "p.h5", {})
    positions = np.array([7, 2, 7, 0, 11])
    for path in (tmp_path / "f.h5", tmp_path / "p.h5"):
        whole, part = load_split(path, "test"), load_split(path, "test", positions, workers=2)
        torch.testing.assert_close(part.x, whole.x[positions], rtol=0, atol=0)
        torch.testing.assert_close(part.y, whole.y[positions])
