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


ROOT = repro.PACKAGE_ROOT.parents[1]


def test_the_import_closure_follows_lazy_relative_and_parent_imports(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("def run():\n    from featflow.ifv import jacobian\n")
    files = {p.relative_to(repro.PACKAGE_ROOT).as_posix() for p in repro.import_closure(script) if p != script}
    assert {"__init__.py", "ifv/__init__.py", "ifv/jacobian.py"} <= files
    assert "ifv/critical_space.py" not in files  # a sibling the script never imports is not in its key


def test_script_code_changes_exactly_with_the_closure(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import featflow.store\n")
    b.write_text("import featflow.store\n")
    assert repro.script_code(a) == repro.script_code(b)  # same imports, same content: same key
    b.write_text("import featflow.store\nimport featflow.ifv.jacobian\n")
    assert repro.script_code.__wrapped__(b) != repro.script_code(a)
    theory = {p.name for p in repro.import_closure(ROOT / "workflow/scripts/theory_train.py")}
    assert "jacobian.py" not in theory and "theory_train.py" in theory
