"""Code hashes per stage, and provenance attributes."""

from __future__ import annotations

import pytest

from featflow import repro


def test_code_version_is_stable_and_stage_specific():
    assert repro.code_version("data") == repro.code_version("data")
    assert repro.code_version("data") != repro.code_version("train")
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        repro.code_version("nope")


def test_code_version_follows_the_stage_files(monkeypatch):
    data_files = {p.name for p in repro._stage_files(repro.STAGE_CODE["data"])}
    assert {"planted.py", "store.py", "config.py"} <= data_files
    assert "train.py" not in data_files  # a change to training code does not rerun the data stage
    monkeypatch.setitem(repro.STAGE_CODE, "probe", ("data/planted.py",))
    assert len(repro.code_version.__wrapped__("probe")) == 16
    monkeypatch.setitem(repro.STAGE_CODE, "probe2", ("data/missing.py",))
    with pytest.raises(ValueError, match="does not exist"):
        repro.code_version.__wrapped__("probe2")


def test_provenance_records_config_seed_and_versions():
    attrs = repro.provenance("data", {"kind": "planted"}, 7)
    assert attrs["config"] == '{"kind": "planted"}' and attrs["seed"] == 7
    assert attrs["code_version"] == repro.code_version("data")
    assert attrs["torch_version"] != "absent"
