"""Issue 16.5: codes and robustness split into shard jobs merge into the file one job writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.complexity.codes import encode_split, merge_codes
from featflow.complexity.robustness import compute_robustness, merge_robustness
from featflow.complexity.spec import ComplexitySpec
from tests.complexity_data import write_complexity_inputs

SPEC = ComplexitySpec.from_dict({"robustness": {"sigmas": [0.05, 0.5], "draws": 3, "images": 45}})
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_complexity_inputs(tmp_path_factory.mktemp("shards"), n=301, d=16, n_layers=2, k=24)


def test_codes_of_shards_merge_into_the_one_jobs_file(inputs: dict[str, Path], tmp_path: Path) -> None:
    one = tmp_path / "codes.h5"
    files = {key: inputs[key] for key in ("dictionary", "activations", "checkpoint")}
    encode_split(SPEC, **files, out=one, device=CPU, attrs={})
    shards = [tmp_path / f"codes_{i}.h5" for i in range(3)]
    for i, path in enumerate(shards):
        encode_split(SPEC, **files, out=path, device=CPU, attrs={}, shard=i, shards=3)
    merged = tmp_path / "merged.h5"
    merge_codes(shards, out=merged, attrs={})
    a, b = (store.read_h5(p, "complexity-codes")["codes"] for p in (one, merged))
    assert a.shape == (301, 24)
    # per-sample float32 NNLS stopped at a certified gap of 1e-4: the batch a sample is solved in changes its
    # rounding (BLAS blocking), and so at most the iteration it stops at
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * float(a.max()))
    attrs_one, attrs_merged = store.read_attrs(one), store.read_attrs(merged)
    for key in ("accuracy", "accuracy_reconstructed", "codes_unconverged", "layer", "codes_gradient"):
        assert attrs_merged[key] == attrs_one[key], key
    np.testing.assert_allclose(attrs_merged["relative_error"], attrs_one["relative_error"], rtol=1e-5)
    with pytest.raises(store.StoreError, match="shard 1 of 3"):
        merge_codes([shards[1], shards[0], shards[2]], out=tmp_path / "bad.h5", attrs={})


def test_robustness_of_shards_merges_into_the_one_jobs_file(inputs: dict[str, Path], tmp_path: Path) -> None:
    args = {
        "checkpoint": inputs["checkpoint"],
        "data": inputs["data"],
        "dictionary": inputs["dictionary"],
        "pool_mode": "gap",
    }
    one = tmp_path / "robustness.h5"
    compute_robustness(SPEC, **args, out=one, device=CPU, seed=5, attrs={})
    shards = [tmp_path / f"robustness_{i}.h5" for i in range(4)]
    for i, path in enumerate(shards):
        compute_robustness(SPEC, **args, out=path, device=CPU, seed=5, attrs={}, shard=i, shards=4)
    merged = tmp_path / "merged.h5"
    merge_robustness(SPEC, shards, out=merged, attrs={})
    a, b = (store.read_h5(p, "complexity-robustness") for p in (one, merged))
    np.testing.assert_allclose(b["sensitivity"], a["sensitivity"], rtol=1e-4, equal_nan=True)  # float32 codes
    np.testing.assert_array_equal(b["accuracy"], a["accuracy"])
    np.testing.assert_array_equal(b["at_chance"], a["at_chance"])
    assert store.read_attrs(merged)["clean_accuracy"] == store.read_attrs(one)["clean_accuracy"]
    assert np.isfinite(a["sensitivity"]).sum() > 10
