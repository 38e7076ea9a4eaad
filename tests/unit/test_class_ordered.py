"""Issue 32: on an ImageFolder written class by class (as ImageNet and every user's folder are listed), the stages
that evaluate the first rows of a split (activations.max_samples, the robustness images, shards, the dictionary's
streamed batches, hence codes, top images, pictures, temporal and flow, which read the activations' rows) see
every class: the data job stores each split in a seeded random order. A network far above chance is not flagged,
and shard jobs still merge into the one job's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import ImageFolder

from featflow import store
from featflow.activations import extract_shard_to_h5, extract_to_h5, merge_shards
from featflow.complexity.codes import encode_split, merge_codes
from featflow.complexity.dictionary import fit_dictionary
from featflow.complexity.robustness import compute_robustness, merge_robustness
from featflow.complexity.spec import ComplexitySpec
from featflow.config import ActivationsSpec, DatasetSpec, ModelSpec, TrainSpec
from featflow.data import labels_of, write_dataset
from featflow.metrics import robustness
from featflow.models.train import train_model
from tests.folder_data import write_imagefolder

CLASSES, PER_CLASS = 4, 20
CPU = torch.device("cpu")
SPEC = ComplexitySpec.from_dict(
    {
        "dictionary": {"k": 8, "iterations": 60},
        "robustness": {"sigmas": [0.05, 0.2, 100.0], "draws": 3, "images": 24},
    }
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A class-ordered, learnable ImageFolder, its data file, a small CNN trained on it, the test split's
    activations and a dictionary of its penultimate layer."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ordered")
    folder = write_imagefolder(root / "folder", CLASSES, PER_CLASS, (16, 16), tinted=True)
    paths = {"folder": folder, "data": root / "data.h5", "model": root / "m.pt", "acts": root / "acts.h5"}
    write_dataset(DatasetSpec(kind="imagefolder", path=str(folder), image_size=16), paths["data"], {})
    spec = ModelSpec(arch="smallcnn", dataset="f", width=8, train=TrainSpec(epochs=6, batch_size=16, lr=0.05))
    result = train_model(spec, paths["data"], paths["model"], device=CPU, attrs={})
    assert result["test_acc"] >= 0.9, result  # far above chance (0.25)
    extract_to_h5(
        paths["model"],
        paths["data"],
        "test",
        ["act"],
        ActivationsSpec(batch_size=16),
        paths["acts"],
        device=CPU,
        attrs={},
    )
    paths["dictionary"] = root / "dictionary.h5"
    fit_dictionary(
        SPEC, layer="act", activations=paths["acts"], checkpoint=paths["model"], out=paths["dictionary"], device=CPU,
        seed=0, attrs={"layer": "act"},
    )  # fmt: skip
    return paths


def test_the_data_job_stores_a_class_ordered_folder_in_a_seeded_order(run: dict[str, Path], tmp_path: Path) -> None:
    source = ImageFolder(run["folder"] / "val")
    assert np.all(np.diff(source.targets) >= 0)  # the source lists the images class by class
    index = store.read_h5(run["data"], "dataset")["test"]
    y, picked = index["y"], index["source_index"]
    assert sorted(picked.tolist()) == list(range(CLASSES * PER_CLASS))  # every image, each once
    np.testing.assert_array_equal(y, np.asarray(source.targets)[picked])
    assert [str(Path(source.samples[i][0]).relative_to(run["folder"] / "val")) for i in picked] == list(index["files"])
    assert set(y[:CLASSES].tolist()) == set(range(CLASSES))  # any first rows: a stratified sample of the split
    again, other = tmp_path / "again.h5", tmp_path / "other.h5"
    write_dataset(DatasetSpec(kind="imagefolder", path=str(run["folder"]), image_size=16), again, {})
    write_dataset(DatasetSpec(kind="imagefolder", path=str(run["folder"]), image_size=16, seed=1), other, {})
    np.testing.assert_array_equal(store.read_h5(again, "dataset")["test"]["source_index"], picked)  # seeded
    assert not np.array_equal(store.read_h5(other, "dataset")["test"]["source_index"], picked)


def test_the_first_activations_cover_every_class_and_shards_merge(run: dict[str, Path], tmp_path: Path) -> None:
    spec = ActivationsSpec(batch_size=5, max_samples=12, shards=3)
    one = tmp_path / "one.h5"
    extract_to_h5(run["model"], run["data"], "test", ["act"], spec, one, device=CPU, attrs={})
    shards = [tmp_path / f"shard_{i}.h5" for i in range(3)]
    for i, path in enumerate(shards):
        extract_shard_to_h5(
            run["model"], run["data"], "test", ["act"], spec, shard=i, out_path=path, device=CPU, attrs={}
        )
    merged = tmp_path / "merged.h5"
    merge_shards(shards, merged, {})
    a, b = store.read_h5(one, "activations"), store.read_h5(merged, "activations")
    assert set(a["labels"].tolist()) == set(range(CLASSES))
    np.testing.assert_array_equal(a["indices"], np.arange(12))
    np.testing.assert_array_equal(a["labels"], labels_of(run["data"], "test")[:12])
    for key in ("labels", "indices", "logits"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b["layers"]["act"], a["layers"]["act"], rtol=1e-5, atol=1e-6)
    # the dictionary streams the activations' rows in order: its first batch holds every class too
    full = store.read_h5(run["acts"], "activations")["labels"]
    assert set(full[:16].tolist()) == set(range(CLASSES))


def test_robustness_sees_every_class_and_a_good_network_is_not_at_chance(run: dict[str, Path], tmp_path: Path) -> None:
    args = {"checkpoint": run["model"], "data": run["data"], "dictionary": run["dictionary"], "pool_mode": "gap"}
    one = tmp_path / "robustness.h5"
    compute_robustness(SPEC, **args, out=one, device=CPU, seed=5, attrs={})
    rob, attrs = store.read_h5(one, "complexity-robustness"), store.read_attrs(one)
    np.testing.assert_array_equal(rob["indices"], np.arange(24))  # the rows used, as the frequency files record
    labels = labels_of(run["data"], "test")[rob["indices"]]
    np.testing.assert_array_equal(rob["label_counts"], np.bincount(labels, minlength=CLASSES))
    np.testing.assert_array_equal(rob["label_counts"], [6] * CLASSES)  # every class, stratified
    assert attrs["chance"] == 0.25
    assert attrs["clean_accuracy"] >= 0.9 and rob["accuracy"][0] >= 0.9, (attrs, rob["accuracy"])
    assert rob["at_chance"].tolist()[:2] == [False, False] and rob["at_chance"][-1], rob["accuracy"]
    shards = [tmp_path / f"robustness_{i}.h5" for i in range(3)]
    for i, path in enumerate(shards):
        compute_robustness(SPEC, **args, out=path, device=CPU, seed=5, attrs={}, shard=i, shards=3)
    merged = tmp_path / "merged.h5"
    merge_robustness(SPEC, shards, out=merged, attrs={})
    m = store.read_h5(merged, "complexity-robustness")
    for key in ("indices", "label_counts", "accuracy", "at_chance"):
        np.testing.assert_array_equal(m[key], rob[key])
    np.testing.assert_allclose(m["sensitivity"], rob["sensitivity"], rtol=1e-4, equal_nan=True)
    assert store.read_attrs(merged)["clean_accuracy"] == attrs["clean_accuracy"]


def test_the_codes_of_shards_merge_on_the_shuffled_split(run: dict[str, Path], tmp_path: Path) -> None:
    one, shards = tmp_path / "codes.h5", [tmp_path / f"codes_{i}.h5" for i in range(2)]
    files = {"dictionary": run["dictionary"], "activations": run["acts"], "checkpoint": run["model"]}
    encode_split(SPEC, **files, out=one, device=CPU, attrs={})
    for i, path in enumerate(shards):
        encode_split(SPEC, **files, out=path, device=CPU, attrs={}, shard=i, shards=2)
    merged = tmp_path / "merged.h5"
    merge_codes(shards, out=merged, attrs={})
    a, b = (store.read_h5(p, "complexity-codes")["codes"] for p in (one, merged))
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * float(a.max()))


def test_a_sample_of_one_class_is_refused_with_the_key(run: dict[str, Path], tmp_path: Path) -> None:
    whole = SPEC.to_dict()
    one_image = ComplexitySpec.from_dict({**whole, "robustness": {**whole["robustness"], "images": 1}})
    with pytest.raises(ValueError, match=r"complexity\.robustness\.images: .* 1 class"):
        compute_robustness(
            one_image, checkpoint=run["model"], data=run["data"], dictionary=run["dictionary"], pool_mode="gap",
            out=tmp_path / "r.h5", device=CPU, seed=5, attrs={},
        )  # fmt: skip
    assert not (tmp_path / "r.h5").exists()


def test_chance_is_the_label_distribution_of_the_images_used() -> None:
    # 0.81 correct: at chance among 64 images of one class, far above it among 64 of four balanced classes
    with pytest.raises(ValueError, match="at least 2"):
        robustness.at_chance([0.81], [64, 0, 0, 0])
    assert robustness.at_chance([0.81, 0.3], [16, 16, 16, 16]) == [False, True]
    assert robustness.at_chance([0.81], [50, 14]) == [True]  # chance 0.78: not significantly above
