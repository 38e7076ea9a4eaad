"""Code hashes per rule script (its import closure), and provenance attributes."""

from __future__ import annotations

from featflow import repro


def test_provenance_records_config_seed_and_versions():
    attrs = repro.provenance("data", {"kind": "planted"}, 7, "0123456789abcdef")
    assert attrs["config"] == '{"kind": "planted"}' and attrs["seed"] == 7
    assert attrs["code_version"] == "0123456789abcdef"
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
