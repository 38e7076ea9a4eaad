"""Sharded extraction (activations.shards > 1) merges into exactly the file a single job writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.activations import extract_shard_to_h5, extract_to_h5, merge_shards, shard_range
from featflow.config import ActivationsSpec
from tests.folder_data import planted_and_cnn

LAYERS = ("block1", "block3", "act")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny planted data set and an untrained (seeded) small CNN checkpoint."""
    return planted_and_cnn(tmp_path_factory.mktemp("shards"))


@pytest.mark.parametrize(("n", "shards"), [(37, 4), (8, 8), (10, 1), (5, 3)])
def test_shard_range_tiles_the_split(n: int, shards: int) -> None:
    ranges = [shard_range(n, shards, i) for i in range(shards)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_shard_range_rejects_more_shards_than_samples() -> None:
    with pytest.raises(ValueError, match="activations.shards = 9"):
        shard_range(8, 9, 0)
    with pytest.raises(ValueError, match="shard 4"):
        shard_range(8, 4, 4)


@pytest.mark.parametrize("max_samples", [None, 30])
def test_four_shards_merge_to_the_single_job_file(
    inputs: tuple[Path, Path], tmp_path: Path, max_samples: int | None
) -> None:
    data, checkpoint = inputs
    cpu = torch.device("cpu")
    single = ActivationsSpec(batch_size=8, max_samples=max_samples)
    sharded = ActivationsSpec(batch_size=8, max_samples=max_samples, shards=4)
    extract_to_h5(
        checkpoint, data, "test", LAYERS, single, tmp_path / "single.h5", device=cpu, attrs={"stage": "activations"}
    )
    paths = [tmp_path / f"test_{i}.h5" for i in range(4)]
    for i, path in enumerate(paths):
        extract_shard_to_h5(
            checkpoint,
            data,
            "test",
            LAYERS,
            sharded,
            shard=i,
            out_path=path,
            device=cpu,
            attrs={"stage": "activations"},
        )
    merge_shards(paths, tmp_path / "merged.h5", {"stage": "activations"})

    a, b = store.read_h5(tmp_path / "single.h5", "activations"), store.read_h5(tmp_path / "merged.h5", "activations")
    n = 37 if max_samples is None else max_samples
    assert set(a) == set(b) == {"layers", "logits", "labels", "indices", "factors"}
    np.testing.assert_array_equal(b["indices"], np.arange(n))
    for key in ("labels", "indices", "factors"):
        np.testing.assert_array_equal(a[key], b[key])
    # Shards cut batches at other places; per-sample results agree up to float rounding.
    np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-6)
    for name in LAYERS:
        assert b["layers"][name].dtype == np.float32
        np.testing.assert_allclose(a["layers"][name], b["layers"][name], rtol=1e-5, atol=1e-6)
    attrs_a = store.read_attrs(tmp_path / "single.h5", "activations")
    attrs_b = store.read_attrs(tmp_path / "merged.h5", "activations")
    for key in ("layers", "split", "factor_names", "accuracy"):
        assert attrs_a[key] == attrs_b[key]
    assert "shard" not in attrs_b


def test_merge_rejects_missing_or_misordered_shards(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    data, checkpoint = inputs
    spec = ActivationsSpec(batch_size=16, shards=3)
    paths = [tmp_path / f"train_{i}.h5" for i in range(3)]
    for i, path in enumerate(paths):
        extract_shard_to_h5(
            checkpoint, data, "train", LAYERS, spec, shard=i, out_path=path, device=torch.device("cpu"), attrs={}
        )
    with pytest.raises(ValueError, match="expected shard 0 of 3"):
        merge_shards([paths[1], paths[0], paths[2]], tmp_path / "bad.h5", {})
    with pytest.raises(ValueError, match="is shard 0 of 3, expected shard 0 of 2"):
        merge_shards(paths[:1] + paths[2:], tmp_path / "bad.h5", {})
    assert not (tmp_path / "bad.h5").exists()
