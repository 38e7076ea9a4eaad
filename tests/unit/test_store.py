"""featflow.store: round trips, atomic writes, and clear errors on foreign or truncated files."""

from __future__ import annotations

import sys

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


@pytest.mark.parametrize("rows", [None, 1, 3])
def test_top_rows_per_feature_in_one_chunked_pass(tmp_path, rows):
    codes = np.array([[0.0, 3.0, 1.0], [2.0, 1.0, 1.0], [5.0, 0.0, 1.0], [1.0, 2.0, 4.0], [2.0, 3.0, 0.0]])
    path = tmp_path / "codes.h5"
    store.write_h5(path, "complexity-codes", {"codes": codes}, {})
    top, values = store.top_rows(path, "complexity-codes", "codes", 3, np.array([1, 0, 2]), rows=rows)
    assert top.tolist() == [[0, 4, 3], [2, 1, 4], [3, 0, 1]]  # ties: the earlier row first
    np.testing.assert_array_equal(values, np.take_along_axis(codes[:, [1, 0, 2]].T, top, 1))
    big = np.random.default_rng(0).random((50, 6)).astype(np.float32)
    store.write_h5(path, "complexity-codes", {"codes": big}, {})
    top, _ = store.top_rows(path, "complexity-codes", "codes", 4, np.array([5, 2]), rows=rows)
    assert top.tolist() == np.argsort(-big[:, [5, 2]].T, axis=1, kind="stable")[:, :4].tolist()


def test_read_rows_reads_any_rows_in_any_order(tmp_path):
    data = {"indices": np.arange(10) * 7, "layers": {"act": np.arange(30.0).reshape(10, 3)}}
    store.write_h5(tmp_path / "a.h5", "activations", data, {})
    rows = np.array([[9, 0], [3, 3]])
    indices, acts = store.read_rows(tmp_path / "a.h5", "activations", ["indices", "layers/act"], rows)
    assert indices.tolist() == [[63, 0], [21, 21]]
    np.testing.assert_array_equal(acts, data["layers"]["act"][rows])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # pytest's hook sees them too
def test_an_error_h5py_can_only_print_fails_the_write_and_leaves_nothing(tmp_path):
    """h5py reports a failed chunk flush in ``__dealloc__``, through ``sys.unraisablehook`` ("Exception ignored
    in"), where no caller sees it: the writer collects it, so the file is not renamed into place without it."""
    from types import SimpleNamespace

    path = tmp_path / "d.h5"
    lost = RuntimeError("Can't decrement id ref count (file write failed: errno = 28, error message = 'No space')")
    ignored = SimpleNamespace(
        exc_type=RuntimeError,
        exc_value=lost,
        exc_traceback=None,
        err_msg="Exception ignored in: 'h5py._objects.ObjectID.__dealloc__'",
        object=None,
    )
    with pytest.raises(store.DiskFullError, match=rf"^disk full while writing {path} \(no space left on device"):
        with store.h5_writer(path, "thing", {}) as handle:
            store.create_array(handle, "x", np.zeros(3))
            sys.unraisablehook(ignored)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(store.StoreError, match="h5py failed while writing"):
        with store.h5_writer(path, "thing", {}):
            sys.unraisablehook(SimpleNamespace(**{**vars(ignored), "exc_value": RuntimeError("not a disk error")}))
    assert list(tmp_path.iterdir()) == []


def test_tables_carry_a_checksum_and_a_changed_byte_is_refused(tmp_path):
    frame = pd.DataFrame({"feature": np.arange(50), "complexity": np.linspace(0, 1, 50)})
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    store.write_table(frame, csv, parquet)
    assert list(store.read_table(csv, usecols=["feature"]).columns) == ["feature"]  # options reach pandas
    for path in (csv, parquet):
        pd.testing.assert_frame_equal(store.read_table(path), frame)
        digest, name = store.checksum_path(path).read_text().split()
        assert name == path.name and len(digest) == 64
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x01  # csv: one digit changes, the table still parses
        path.write_bytes(bytes(raw))
        with pytest.raises(store.StoreError, match=rf"{path}: corrupted table .*delete it and rerun the stage"):
            store.read_table(path)
    store.write_table(pd.DataFrame(), tmp_path / "empty.csv")
    assert store.read_table(tmp_path / "empty.csv").empty


def test_a_corrupted_figure_is_refused_when_its_numbers_are_read(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = tmp_path / "f.png"
    store.save_figure(fig, path, {"rho": "0.53"})
    assert store.figure_numbers(path) == {"rho": "0.53"}
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"0.53")] ^= 0x01  # the numbers' own text chunk: its CRC-32 no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(store.StoreError, match=rf"{path}: corrupted figure"):
        store.figure_numbers(path)
