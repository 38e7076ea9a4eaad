"""featflow.store: round trips, atomic writes, and clear errors on foreign or truncated files."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from featflow import store


def test_round_trip_nested_arrays_and_attrs(tmp_path):
    path = tmp_path / "a.h5"
    arrays = {
        "x": np.arange(12, dtype=np.float32).reshape(3, 4),
        "g": {"y": np.array([1, 2, 3]), "names": np.array(["a", "bc"])},
    }
    store.write_h5(path, "thing", arrays, {"config": {"k": [1, 2]}, "seed": 3})
    back = store.read_h5(path, "thing")
    np.testing.assert_array_equal(back["x"], arrays["x"])
    np.testing.assert_array_equal(back["g"]["y"], [1, 2, 3])
    assert list(back["g"]["names"]) == ["a", "bc"]
    attrs = store.read_attrs(path)
    assert attrs["config"] == {"k": [1, 2]} and attrs["seed"] == 3 and attrs["featflow_kind"] == "thing"
    with h5py.File(path) as handle:
        assert handle["x"].compression == "lzf"


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "b.h5"
    with pytest.raises(RuntimeError):
        with store.h5_writer(path, "thing", {}) as handle:
            store.create_array(handle, "x", np.zeros(3))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_wrong_kind_foreign_and_truncated_files_fail_clearly(tmp_path):
    path = tmp_path / "c.h5"
    store.write_h5(path, "thing", {"x": np.zeros(2)}, {})
    with pytest.raises(store.StoreError, match="holds 'thing', expected 'other'"):
        store.read_h5(path, "other")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["x"] = np.zeros(2)
    with pytest.raises(store.StoreError, match="not a featflow file"):
        store.read_h5(foreign)
    truncated = tmp_path / "t.h5"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(store.StoreError, match="truncated or foreign"):
        store.read_h5(truncated)
    with pytest.raises(store.StoreError, match="file not found"):
        store.read_h5(tmp_path / "missing.h5")


def test_table_and_figure_writes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    store.write_table(frame, tmp_path / "t.csv", tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), frame)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    store.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_read_items_reads_only_the_named_datasets(tmp_path):
    path = tmp_path / "a.h5"
    layers = {"a": np.arange(6.0).reshape(3, 2), "b": np.ones((3, 4))}
    store.write_h5(path, "activations", {"layers": layers, "labels": np.array([0, 1, 2])}, {})
    got = store.read_items(path, "activations", ["layers/b", "labels", "logits"])
    assert set(got) == {"layers/b", "labels"}  # absent names are skipped, other layers never read
    np.testing.assert_array_equal(got["layers/b"], layers["b"])
    np.testing.assert_array_equal(got["labels"], [0, 1, 2])
    with pytest.raises(store.StoreError, match="expected 'codes'"):
        store.read_items(path, "codes", ["labels"])
