"""The DAG runs end to end on a tiny config, plans nothing when nothing changed, reruns only what a change
touches, refuses a bad config before writing anything, and passes `snakemake --lint`."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from featflow import store
from featflow.repro import PACKAGE_ROOT, import_closure
from tests.workflow.conftest import ROOT, copy_workflow, dry_run_after_edit, planned_jobs, snakemake


def test_foundation_outputs(dag_run):
    assert (dag_run / "results/models/cnn.pt").stat().st_size > 0
    for split in ("train", "test"):
        path = dag_run / f"results/planted/activations/{split}.h5"
        data = store.read_h5(path, "activations")
        attrs = store.read_attrs(path)
        assert list(attrs["layers"]) == ["block1", "block2", "block3", "pool", "act"]
        n = data["labels"].shape[0]
        assert data["layers"]["act"].shape == (n, 32)  # 4 * width
        assert data["factors"].shape == (n, 4)
        assert attrs["stage"] == "activations" and len(attrs["code_version"]) == 16
        assert attrs["config"]["layers"][-1] == "act"
    assert (dag_run / "logs/train/cnn.log").read_text().count("test_acc") >= 2


def test_nothing_planned_after_full_run(dag_run):
    result = snakemake(dag_run, "-n")
    assert result.returncode == 0, result.stderr
    assert planned_jobs(result) == {}, result.stdout


def test_activation_change_reruns_only_activations_and_dependents(dag_run, tmp_path):
    config = yaml.safe_load((dag_run / "config/config.yaml").read_text())
    config["experiments"]["planted"]["activations"]["pool"] = "grid2"
    (dag_run / "config/config.yaml").write_text(yaml.safe_dump(config))
    try:
        result = snakemake(dag_run, "-n")
    finally:
        (dag_run / "config/config.yaml").write_text((ROOT / "tests/workflow/tiny.yaml").read_text())
    jobs = planned_jobs(result)
    assert jobs.get("activations") == 2, result.stdout
    assert "data" not in jobs and "train" not in jobs
    assert not any(name.startswith("theory") for name in jobs)


def test_bad_config_is_refused_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "tests/workflow/tiny.yaml").read_text())
    config["models"]["cnn"]["train"]["lrr"] = 0.1
    config["datasets"]["planted"]["n_train"] = -3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    workdir = copy_workflow(tmp_path / "wf", bad)
    result = snakemake(workdir)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "unknown key 'lrr' (did you mean 'lr'?) under models.cnn.train" in message
    assert re.search(r"config key 'datasets\.planted\.n_train': -3 is less than the minimum of 8", message)
    assert not (workdir / "results").exists()


def test_lint_is_clean():
    result = snakemake(ROOT, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def _rerun_reasons(result: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """Rule -> the reasons a dry run gives for its jobs."""
    reasons: dict[str, set[str]] = {}
    rule = None
    for line in (result.stdout + result.stderr).splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            rule = header.group(1)
        elif rule and line.strip().startswith("reason:"):
            reasons.setdefault(rule, set()).add(line.split("reason:", 1)[1].strip())
    return reasons


@pytest.mark.parametrize("module", ["frequency/idcor.py", "metrics/vinfo.py", "ifv/critical_space.py"])
def test_editing_a_module_reruns_exactly_the_rules_whose_code_reaches_it(dag_run, module):
    """The code key of a rule is its script's import closure: an edit plans those rules (params changed) and
    their dependents (inputs updated), nothing else."""
    result = dry_run_after_edit(dag_run, module)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = {path.name for path in (dag_run / "logs").iterdir()}  # the rules of the finished tiny run
    reaching = {
        script.stem
        for script in (ROOT / "workflow" / "scripts").glob("*.py")
        if script.stem in ran and (PACKAGE_ROOT / module).resolve() in import_closure(script)
    }
    assert reaching, f"no rule of the tiny run reaches {module}"
    reasons = _rerun_reasons(result)
    changed = {rule for rule, why in reasons.items() if any("Params have changed" in w for w in why)}
    # A reaching rule downstream of another one is planned for its updated input (Snakemake reports that first).
    assert changed and changed <= reaching <= set(reasons), (changed, reaching, set(reasons))
    others = set(reasons) - reaching
    assert all(w.startswith("Input files updated by another job") for rule in others for w in reasons[rule])
