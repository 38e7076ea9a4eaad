"""The idx reader (featflow.idx), the shipped Fashion-MNIST test set and the ``idx`` data kind."""

import gzip
import shutil
import struct

import numpy as np
import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from featflow import idx
from featflow.config import ConfigError, DatasetSpec, validate_config
from featflow.data import build_dataset

SHIPPED = idx.shipped_folder()


def write_idx(path, array: np.ndarray) -> None:
    """An idx file of uint8 ``array`` (gzip when the name ends in .gz), as LeCun's format defines it."""
    payload = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(payload)


def test_shipped_files_equal_torchvisions_reader(tmp_path):
    for kind, reader in (("images", read_image_file), ("labels", read_label_file)):
        packed = idx.find(SHIPPED, "test", kind)
        plain = tmp_path / packed.stem
        with gzip.open(packed) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        ours = idx.read(packed)
        assert np.array_equal(ours, reader(str(plain)).numpy().astype(ours.dtype))
        assert np.array_equal(ours, idx.read(plain))
    assert ours.shape == (10_000,) and np.bincount(ours).tolist() == [1000] * 10


def test_shipped_folder_is_complete_and_licensed():
    assert idx.folder_problem(SHIPPED) is None
    assert "MIT" in (SHIPPED / "LICENSE").read_text()
    assert idx.class_names(SHIPPED, np.arange(10))[9] == "Ankle boot"


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_truncated_file_is_named(tmp_path, suffix):
    path = tmp_path / f"t10k-images-idx3-ubyte{suffix}"
    write_idx(path, np.zeros((50, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(50, np.uint8))
    assert idx.folder_problem(tmp_path) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    assert str(path) in idx.folder_problem(tmp_path)
    with pytest.raises(ValueError, match="t10k-images"):
        idx.read(path)


def test_folder_problems_name_what_is_missing(tmp_path):
    assert "t10k" in idx.folder_problem(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 4, 4), np.uint8))
    assert "t10k-labels-idx1-ubyte" in idx.folder_problem(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(6, np.uint8))
    assert "differ in count" in idx.folder_problem(tmp_path)


def test_config_refuses_a_broken_idx_folder(tmp_path):
    config = {
        "datasets": {"fm": {"kind": "idx", "path": str(tmp_path)}},
        "models": {"m": {"arch": "smallcnn", "dataset": "fm"}},
        "experiments": {"e": {"model": "m", "dataset": "fm", "layers": ["act"]}},
    }
    with pytest.raises(ConfigError, match="datasets.fm.path"):
        validate_config(config)
    del config["datasets"]["fm"]["path"]  # the shipped set
    validate_config(config)


def test_shipped_set_splits_stratified_and_seeded():
    spec = DatasetSpec(kind="idx", n_train=2000, n_test=500, image_size=32, seed=3)
    bundle = build_dataset(spec)
    assert bundle.train.x.shape == (2000, 1, 32, 32) and bundle.test.x.shape == (500, 1, 32, 32)
    counts = np.bincount(bundle.test.y)
    assert counts.max() - counts.min() <= 2  # stratified
    assert len(set(bundle.test.y[:10].tolist())) >= 9  # and so are its first rows
    assert np.bincount(bundle.train.y).min() > 150  # a uniform draw from 9,500 images of 10 classes
    assert len(set(bundle.train.y[:20].tolist())) > 3  # stored in a shuffled order, not class by class
    again = build_dataset(spec)
    assert np.array_equal(again.train.x, bundle.train.x) and np.array_equal(again.test.y, bundle.test.y)
    other = build_dataset(DatasetSpec(kind="idx", n_train=2000, n_test=500, image_size=32, seed=4))
    assert not np.array_equal(other.test.y, bundle.test.y)
    # train and test come from disjoint images of the 10,000
    every = idx.read(idx.find(SHIPPED, "test", "images"))
    native = build_dataset(DatasetSpec(kind="idx", n_train=9000, n_test=1000, image_size=28, seed=0))
    both = np.concatenate([native.train.x, native.test.x])[:, 0]
    assert len({row.tobytes() for row in both}) == len({row.tobytes() for row in every})
    assert torch.equal(torch.from_numpy(np.sort(native.test.y)), torch.arange(10).repeat_interleave(100))


def test_a_full_folder_reads_its_train_and_test_files(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 255, (40, 6, 6), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(40, dtype=np.uint8) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((9, 6, 6), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(9, dtype=np.uint8) % 3)
    bundle = build_dataset(DatasetSpec(kind="idx", path=str(tmp_path), n_train=30, n_test=9, image_size=8))
    assert bundle.train.x.shape == (30, 1, 8, 8) and bundle.test.x.shape == (9, 1, 8, 8)
    assert bundle.classes == ("0", "1", "2")
    assert not bundle.test.x.any() and bundle.train.x.any()
