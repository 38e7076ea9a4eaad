"""Data sets by name, written once into ``results/data/{dataset}.h5`` and read back as tensors or batches.

Generated data sets (planted, shi, digits) are materialized: groups ``train`` and ``test``, each with ``x``
(uint8 images (N, C, H, W) or float32 vectors (N, d)), ``y`` (int64 labels) and, where the generator knows
them, ``factors`` (float32 (N, F), names in the ``factor_names`` attribute). Folder data sets (cifar10,
imagefolder) are indexed, not copied: each split holds ``y`` and ``source_index`` (positions in torchvision's
data set of that split; ImageFolder also ``files``, paths relative to the split folder ``root``), stored in a
seeded random order stratified by class (:func:`_stratified_order`: the first rows of a split are a stratified
sample of it, whatever the source's order), and images are decoded from the source with the model's
preprocessing as they are read (:func:`batches`, a DataLoader with worker processes), so nothing grows with N.
Deterministic from the spec's seed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featflow import store
from featflow.config import DatasetSpec
from featflow.data.planted import CLASS_NAMES as PLANTED_CLASSES
from featflow.data.planted import FACTOR_NAMES as PLANTED_FACTORS
from featflow.data.planted import generate_planted

if TYPE_CHECKING:  # torch is imported by the functions that need it: readers of featflow.data.shi (the theory
    # branch) and the torch-free figure jobs import this package
    import torch

log = logging.getLogger(__name__)

KIND = "dataset"


@dataclass
class Split:
    """One split in memory: inputs, labels and optional factors."""

    x: np.ndarray
    y: np.ndarray
    factors: np.ndarray | None = None


@dataclass
class Bundle:
    """A materialized data set: its splits plus description attributes and extra arrays."""

    train: Split
    test: Split
    classes: tuple[str, ...]
    factor_names: tuple[str, ...] = ()
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _take(split: Split, keep: np.ndarray) -> Split:
    """The samples of ``split`` selected by ``keep`` (indices or a boolean mask), factors included."""
    return Split(split.x[keep], split.y[keep], None if split.factors is None else split.factors[keep])


def _resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 (N, C, H, W) images with torchvision."""
    import torch
    from torchvision.transforms.v2 import functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.resize(torch.from_numpy(images), [size, size], antialias=True)
    return out.numpy()


def _to_gray(images: np.ndarray) -> np.ndarray:
    import torch
    from torchvision.transforms.v2 import functional as F

    return F.rgb_to_grayscale(torch.from_numpy(images)).numpy()


def _planted(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    splits = [Split(*generate_planted(n, spec.image_size, rng)) for n in (spec.n_train, spec.n_test)]
    return Bundle(splits[0], splits[1], PLANTED_CLASSES, PLANTED_FACTORS)


def _shi(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from featflow.data.shi import generate_shi

    train, test, m = generate_shi(spec.shi, spec.n_train, spec.n_test, rng)
    names = tuple(f"phi{i}" for i in range(spec.shi.D))
    as_split = [Split(s.x, (s.y > 0).astype(np.int64), s.phi) for s in (train, test)]
    return Bundle(as_split[0], as_split[1], ("even", "odd"), names, {"M": m})


def _digits(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)[:, None]
    images = _resize_uint8(images, spec.image_size)
    order = rng.permutation(images.shape[0])
    n_test = min(spec.n_test, images.shape[0] // 5)
    test, train = order[:n_test], order[n_test:]
    return Bundle(
        Split(images[train], digits.target[train].astype(np.int64)),
        Split(images[test], digits.target[test].astype(np.int64)),
        tuple(str(c) for c in range(10)),
    )


def _idx(spec: DatasetSpec, rng: np.random.Generator) -> Bundle:
    """MNIST-format files (Fashion-MNIST ships with featflow): the folder's train and t10k files, each capped at
    ``n_train`` / ``n_test``; a folder with the t10k files alone (the shipped test set) is split into test (the
    first ``n_test``, at most half) and train (the rest). Every split in a seeded class-stratified order
    (:func:`_stratified_order`), as the folder data sets are stored."""
    from featflow import idx

    folder = idx.folder(spec.path)
    files = {s: (idx.find(folder, s, "images"), idx.find(folder, s, "labels")) for s in ("train", "test")}
    whole = {s: Split(idx.read(im)[:, None], idx.read(lab).astype(np.int64)) for s, (im, lab) in files.items() if im}
    if "train" in whole:
        train = _take(whole["train"], _stratified_order(whole["train"].y, spec.n_train, rng))
        test = _take(whole["test"], _stratified_order(whole["test"].y, spec.n_test, rng))
    else:
        order = _stratified_order(whole["test"].y, len(whole["test"].y), rng)
        n_test = min(spec.n_test, len(order) // 2)
        test, train = _take(whole["test"], order[:n_test]), _take(whole["test"], order[n_test:][: spec.n_train])
    train.x, test.x = _resize_uint8(train.x, spec.image_size), _resize_uint8(test.x, spec.image_size)
    return Bundle(train, test, idx.class_names(folder, whole["test"].y))


@dataclass
class SourceSplit:
    """One split of a folder data set as an index into its source: positions, labels, files (ImageFolder)."""

    index: np.ndarray
    y: np.ndarray
    root: str
    files: np.ndarray | None = None


def _pick(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of at most ``cap`` of ``n`` samples, drawn without replacement."""
    return np.sort(rng.choice(n, size=min(cap, n), replace=False))


def _stratified_order(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of at most ``cap`` of the samples with these ``labels``, in a seeded random order stratified by
    class: each class's samples, shuffled, get the keys (j + u_j) / n_c (rank j, u_j uniform in [0, 1)) and all
    are sorted by key, so that any first m rows hold every class in proportion to its share of the source (within
    a sample or two; one of each class among the first rows when the classes are balanced), in a random order.

    The split is stored in this order, so that the first rows of it (``activations.max_samples``,
    ``complexity.robustness.images``, a shard, a streamed batch) are a stratified random sample of the whole split:
    a source listed class by class (an ImageFolder's sorted files) would otherwise give them one class."""
    labels = np.asarray(labels, np.int64)
    n = labels.shape[0]
    shuffled = rng.permutation(n)
    grouped = shuffled[np.argsort(labels[shuffled], kind="stable")]  # class by class, random within a class
    _, first, counts = np.unique(labels[grouped], return_index=True, return_counts=True)
    rank = np.arange(n) - np.repeat(first, counts)
    keys = np.empty(n)
    keys[grouped] = (rank + rng.random(n)) / np.repeat(counts, counts)
    return np.argsort(keys, kind="stable")[: min(cap, n)]


CIFAR10_BATCHES = {True: tuple(f"data_batch_{i}" for i in range(1, 6)), False: ("test_batch",)}


def cifar10_arrays(root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, 32, 32, 3) uint8, labels and class names of a CIFAR-10 split, from the python batches under
    ``root/cifar-10-batches-py`` (the format torchvision reads; no md5 check, so a re-packed copy reads too)."""
    import pickle

    folder = Path(root) / "cifar-10-batches-py"

    def unpickle(name: str) -> dict[str, Any]:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: CIFAR-10 batch not found; expected the extracted python batches")
        with open(folder / name, "rb") as stream:
            return pickle.load(stream, encoding="latin1")

    entries = [unpickle(name) for name in CIFAR10_BATCHES[train]]
    images = np.concatenate([e["data"] for e in entries]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.concatenate([np.asarray(e["labels"], np.int64) for e in entries])
    return images, labels, tuple(unpickle("batches.meta")["label_names"])


def _cifar10_index(spec: DatasetSpec, rng: np.random.Generator) -> tuple[list[SourceSplit], tuple[str, ...]]:
    splits = []
    for flag, cap in ((True, spec.n_train), (False, spec.n_test)):
        _, targets, classes = cifar10_arrays(str(spec.path), flag)
        keep = _stratified_order(targets, cap, rng)
        splits.append(SourceSplit(keep, targets[keep], str(Path(str(spec.path)).resolve())))
    return splits, classes


def _imagefolder_index(spec: DatasetSpec, rng: np.random.Generator) -> tuple[list[SourceSplit], tuple[str, ...]]:
    from torchvision.datasets import ImageFolder

    from featflow.data.images import check_images

    root = Path(spec.path).resolve()
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise ValueError(f"datasets.path '{root}': expected an ImageFolder tree with train/ and val/ (or test/)")
    splits = []
    for folder, cap in ((root / "train", spec.n_train), (test_dir, spec.n_test)):
        source = ImageFolder(folder)
        keep = _stratified_order(np.asarray(source.targets, np.int64), cap, rng)
        files = np.asarray([str(Path(source.samples[i][0]).relative_to(folder)) for i in keep], dtype=object)
        check_images(folder, list(files), what=f"{folder.name} images")  # here, not in a later job's DataLoader
        splits.append(SourceSplit(keep, np.asarray(source.targets, np.int64)[keep], str(folder), files))
    return splits, tuple(source.classes)


INDEXERS = {"cifar10": _cifar10_index, "imagefolder": _imagefolder_index}


BUILDERS = {
    "planted": _planted,
    "shi": _shi,
    "digits": _digits,
    "idx": _idx,
}


def build_dataset(spec: DatasetSpec) -> Bundle:
    """Materialize a generated data set in memory, deterministically from ``spec.seed``."""
    if spec.kind not in BUILDERS:
        raise ValueError(f"datasets.kind '{spec.kind}': expected one of {sorted(BUILDERS)} (generated data)")
    bundle = BUILDERS[spec.kind](spec, np.random.default_rng(spec.seed))
    if spec.grayscale and bundle.train.x.ndim == 4 and bundle.train.x.shape[1] == 3:
        bundle.train.x, bundle.test.x = _to_gray(bundle.train.x), _to_gray(bundle.test.x)
    if spec.exclude_classes:
        bundle.train = _without_classes(bundle.train, spec.exclude_classes)
    return bundle


def _without_classes(split: Split, classes: tuple[int, ...]) -> Split:
    """Drop the samples of ``classes`` (a network never trained on them keeps their logits untrained)."""
    return _take(split, ~np.isin(split.y, classes))


def write_dataset(spec: DatasetSpec, path: str | Path, attrs: dict[str, Any]) -> None:
    """Build the data set (or the index of a folder data set) and write it atomically to ``path``."""
    if spec.kind in INDEXERS:
        _write_index(spec, path, attrs)
        return
    bundle = build_dataset(spec)
    arrays: dict[str, Any] = {}
    for name in ("train", "test"):
        split: Split = getattr(bundle, name)
        arrays[name] = {"x": split.x, "y": split.y}
        if split.factors is not None:
            arrays[name]["factors"] = split.factors
    if bundle.extra:
        arrays["extra"] = bundle.extra
    meta = {"classes": list(bundle.classes), "factor_names": list(bundle.factor_names), "kind_of_data": spec.kind}
    store.write_h5(path, KIND, arrays, {**attrs, **meta})
    log.info(
        "%s: %d train, %d test samples, %d classes, input %s",
        spec.kind,
        bundle.train.x.shape[0],
        bundle.test.x.shape[0],
        len(bundle.classes),
        bundle.train.x.shape[1:],
    )


def _write_index(spec: DatasetSpec, path: str | Path, attrs: dict[str, Any]) -> None:
    """Which source samples make up each split of a folder data set, their labels and how to read them."""
    (train, test), classes = INDEXERS[spec.kind](spec, np.random.default_rng(spec.seed))
    if spec.exclude_classes:
        keep = ~np.isin(train.y, spec.exclude_classes)
        files = None if train.files is None else train.files[keep]
        train = SourceSplit(train.index[keep], train.y[keep], train.root, files)
    meta = {
        "classes": list(classes),
        "factor_names": [],
        "kind_of_data": spec.kind,
        "source": spec.kind,
        "image_size": spec.image_size,
        "channels": 1 if spec.grayscale else 3,
    }
    with store.h5_writer(path, KIND, {**attrs, **meta}) as handle:
        for name, split in (("train", train), ("test", test)):
            group = handle.create_group(name)
            group.attrs["root"] = split.root
            store.create_array(group, "y", split.y)
            store.create_array(group, "source_index", split.index.astype(np.int64))
            if split.files is not None:
                store.create_array(group, "files", split.files)
    log.info(
        "%(kind)s: %(train)d train, %(test)d test samples indexed under %(path)s, %(classes)d classes, "
        "read at %(px)d px",
        {
            "kind": spec.kind,
            "train": len(train.y),
            "test": len(test.y),
            "path": spec.path,
            "classes": len(classes),
            "px": spec.image_size,
        },
    )


@dataclass
class LoadedSplit:
    """A split read back from disk: float inputs (images scaled to [0, 1]) and labels as tensors."""

    x: torch.Tensor
    y: torch.Tensor
    factors: np.ndarray | None
    classes: tuple[str, ...]
    factor_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split '{split}': expected 'train' or 'test'")


def split_size(path: str | Path, split: str) -> int:
    """The number of samples in one split of a data set file, read from its metadata only."""
    _check_split(split)
    with store.h5_reader(path, KIND) as handle:
        return int(handle[split]["y"].shape[0])


def labels_of(path: str | Path, split: str, rows: slice = slice(None)) -> np.ndarray:
    """The labels of ``rows`` of one split, read from the data set file alone (no image is decoded)."""
    _check_split(split)
    with store.h5_reader(path, KIND) as handle:
        return np.asarray(handle[split]["y"][rows], np.int64)


Preprocess = tuple[int, int, Any]  # (resize of the short side, center crop, interpolation) of folder images


@dataclass
class Batch:
    """Consecutive samples of a split: float inputs (images in [0, 1]), labels, factors when the data has them."""

    x: torch.Tensor
    y: torch.Tensor
    factors: np.ndarray | None


def describe(path: str | Path) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
    """Input shape (C, H, W) or (d,), class names and factor names of a data set file, from metadata only."""
    with store.h5_reader(path, KIND) as handle:
        classes = tuple(str(c) for c in store.decode_attr(handle.attrs["classes"]))
        factor_names = tuple(str(c) for c in store.decode_attr(handle.attrs["factor_names"]))
        if "source" in handle.attrs:
            size = int(handle.attrs["image_size"])
            shape: tuple[int, ...] = (int(handle.attrs["channels"]), size, size)
        else:
            shape = tuple(handle["train"]["x"].shape[1:])
    return shape, classes, factor_names


def _transform(preprocess: Preprocess, grayscale: bool) -> Any:
    """PIL image -> float (C, crop, crop) in [0, 1]: resize and crop on the PIL image, then scale, in the order of
    torchvision's weights transforms (``ImageClassification``, whose normalization is the model's own)."""
    import torch
    from torchvision.transforms import v2

    resize, crop, interpolation = preprocess
    steps = [v2.Resize(resize, interpolation=interpolation, antialias=True), v2.CenterCrop(crop)]
    if grayscale:
        steps.append(v2.Grayscale())
    return v2.Compose([*steps, v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])


Rows = slice | np.ndarray  # a slice of a split, or sample positions in any order


def _take_rows(dset: Any, rows: Rows) -> np.ndarray:
    """``dset[rows]``; positions in any order, with repeats (HDF5 reads increasing, unique positions only)."""
    if isinstance(rows, slice):
        return dset[rows]
    unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
    return dset[unique][inverse]


def _source(handle: Any, split: str, rows: Rows, preprocess: Preprocess | None) -> torch.utils.data.Dataset:
    """The rows of a folder split as a torch Dataset reading straight from the source."""
    group = handle[split]
    size = int(handle.attrs["image_size"])
    transform = _transform(preprocess or (size, size, _bilinear()), int(handle.attrs["channels"]) == 1)
    labels = _take_rows(group["y"], rows)
    from featflow.data.sources import Files, Pixels

    if handle.attrs["source"] == "imagefolder":
        return Files(str(group.attrs["root"]), _take_rows(group["files"].asstr(), rows), labels, transform)
    images, _, _ = cifar10_arrays(str(group.attrs["root"]), split == "train")
    return Pixels(images, _take_rows(group["source_index"], rows), labels, transform)


def _bilinear() -> Any:
    from torchvision.transforms import InterpolationMode

    return InterpolationMode.BILINEAR


def batches(
    path: str | Path,
    split: str,
    batch_size: int,
    rows: slice = slice(None),
    workers: int = 0,
    preprocess: Preprocess | None = None,
) -> Iterator[Batch]:
    """The ``rows`` of a split in order, ``batch_size`` at a time, never all in memory.

    Materialized files are sliced from HDF5; folder data sets are decoded from the source by a DataLoader with
    ``workers`` processes, with ``preprocess`` (the model's resize and crop; default: the data set's
    ``image_size``).
    """
    import torch

    _check_split(split)
    with store.h5_reader(path, KIND) as handle:
        if "source" in handle.attrs:
            dataset = _source(handle, split, rows, preprocess)
        else:
            group = handle[split]
            start, stop, _ = rows.indices(group["y"].shape[0])
            for first in range(start, stop, batch_size):
                part = slice(first, min(first + batch_size, stop))
                factors = group["factors"][part] if "factors" in group else None
                yield Batch(_as_float(group["x"][part]), torch.from_numpy(group["y"][part]).long(), factors)
            return
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, persistent_workers=False, pin_memory=False
    )
    for x, y in loader:
        yield Batch(x, y.long(), None)


def load_split(path: str | Path, split: str, rows: Rows = slice(None), workers: int = 0) -> LoadedSplit:
    """Read one split of a data set file (only ``rows`` of it: a slice or positions) into memory; uint8 images
    become float32 in [0, 1]. Folder data sets are decoded at their ``image_size`` by ``workers`` DataLoader
    processes: read only the rows needed, or use :func:`batches` to stream large ones."""
    import torch

    _check_split(split)
    _, classes, factor_names = describe(path)
    with store.h5_reader(path, KIND) as handle:
        streamed = "source" in handle.attrs
        if streamed:
            dataset = _source(handle, split, rows, None)
        else:
            group = handle[split]
            x = _take_rows(group["x"], rows)
            y = _take_rows(group["y"], rows)
            factors = _take_rows(group["factors"], rows) if "factors" in group else None
    if streamed:
        parts = [Batch(x, y.long(), None) for x, y in torch.utils.data.DataLoader(dataset, 256, num_workers=workers)]
        channels, size = describe(path)[0][:2]
        tensor = torch.cat([b.x for b in parts]) if parts else torch.empty((0, channels, size, size))
        labels = torch.cat([b.y for b in parts]) if parts else torch.empty(0, dtype=torch.long)
        return LoadedSplit(tensor, labels, None, classes, factor_names)
    return LoadedSplit(_as_float(x), torch.from_numpy(y).long(), factors, classes, factor_names)


def _as_float(x: np.ndarray) -> torch.Tensor:
    """Stored inputs as float32: uint8 images scaled to [0, 1], vectors as they are."""
    import torch

    return torch.from_numpy(x).float().div_(255.0) if x.dtype == np.uint8 else torch.from_numpy(x).float()
