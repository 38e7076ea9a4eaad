"""Each preset runs alone: `snakemake --configfile config/presets/X.yaml` (and `make run CONFIG=...`) plans only
the preset's own jobs, not the default config's, and a minimal config (one data set, model and experiment)
plans its model and activations only. Dry runs in a copy whose config/config.yaml is the default config."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml

from featflow.names import checked
from featflow.targets import figures
from tests.folder_data import write_cifar10, write_imagefolder
from tests.workflow.conftest import ROOT, copy_workflow, planned_jobs, snakemake
from tests.workflow.test_targets import MINIMAL

PRESETS = sorted((ROOT / "config" / "presets").glob("*.yaml"))
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())
COMPLEXITY = {"dictionary", "codes", "complexity", "redundancy", "robustness", "importance", "feature_table"}
COMPLEXITY |= {"dictionary_quality"}
FV = {"fv_targets", "fv_optimize", "fv_figure", "jacobian", "critical_space", "ifv", "reoptimize"}
FV_FIGURES = {"ifv_figures", "reoptimize_figure", "critical_space_figure"}
THEORY = {"theory_train", "theory_baselines", "theory_alignment", "theory_figure_accuracy", "theory_figure_alignment"}


def expected_rules(cfg: dict) -> set[str]:
    """The rules a validated config's run plans from scratch, branch by branch."""
    rules = {"all", "data", "train"} if cfg["models"] else {"all", "data"}
    experiments = cfg["experiments"].values()
    if experiments:
        rules.add("activations")
    if any(e["activations"]["shards"] > 1 for e in experiments):
        rules.add("activations_shard")
    if (cfg.get("complexity") or {}).get("experiments"):
        rules |= COMPLEXITY | {"complexity_figures", "feature_pictures", "meta_features"}
    if ((cfg.get("complexity") or {}).get("flow") or {}).get("experiments"):
        rules.add("feature_flow")
    fv = cfg.get("fv") or {}
    if fv:
        rules |= FV | FV_FIGURES
    if any(spec["invert_with"] for spec in fv.values()):
        rules |= {"cross_ifv", "cross_ifv_figure"}
    freq = cfg.get("frequency") or {}
    for part, names in (("masks", {"fourier_mask", "fourier_mask_figures"}), ("maps", {"adversarial_maps"})):
        if (freq.get(part) or {}).get("models"):
            rules |= names | ({"adversarial_maps_figure"} if part == "maps" else set())
    if (freq.get("idcor") or {}).get("experiments"):
        rules |= {"idcor", "idcor_table", "idcor_figure"}
    if cfg.get("theory"):
        rules |= THEORY
    if figures(cfg):
        rules |= {"claims", "summary"}
    return rules


def _local(config: dict, root: Path) -> dict:
    """``config`` with its data folders and weights files replaced by small ones written under ``root``."""
    for ds in config["datasets"].values():
        if ds["kind"] == "cifar10":
            ds["path"] = str(write_cifar10(root / "data" / "cifar10"))
        elif ds["kind"] == "imagefolder":
            ds["path"] = str(write_imagefolder(root / "data" / "imagefolder"))
    for model in config["models"].values():
        if model.get("weights") and "/" in model["weights"]:
            model["weights"] = str(root / "weights.pt")
            torch.save({}, model["weights"])
    return config


def _outputs(result: subprocess.CompletedProcess) -> list[str]:
    return [p for line in result.stdout.splitlines() if line.startswith("    output: ") for p in line[12:].split(", ")]


def _names(config: dict) -> set[str]:
    return {name for section in ("datasets", "models", "experiments", "fv") for name in config.get(section) or {}}


CASES = {p.stem: yaml.safe_load(p.read_text()) for p in PRESETS} | {"minimal": MINIMAL}


def _dry_run(workdir: Path, case: str) -> tuple[dict, subprocess.CompletedProcess]:
    config = _local(yaml.safe_load(yaml.safe_dump(CASES[case])), workdir / case)
    path = workdir / f"{case}.yaml"
    path.write_text(yaml.safe_dump(config))
    return config, snakemake(workdir, "-n", "--configfile", path.name)


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, subprocess.CompletedProcess]]:
    """A dry run of every case, two at a time, in one copy whose config/config.yaml is the default config."""
    workdir = copy_workflow(tmp_path_factory.mktemp("presets"), ROOT / "config" / "config.yaml")
    with ThreadPoolExecutor(2) as pool:
        futures = {case: pool.submit(_dry_run, workdir, case) for case in sorted(CASES)}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_plans_only_its_own_jobs(dry_runs, case):
    config, result = dry_runs[case]
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    assert set(jobs) == expected_rules(checked(config)), jobs
    # No job of the default config: every name in an output path is one of the config's own.
    foreign = _names(DEFAULT) - _names(config)
    parts = {re.sub(r"\.(pt|h5)$", "", part) for out in _outputs(result) for part in out.split("/")}
    assert not parts & foreign, sorted(parts & foreign)


def test_make_run_passes_the_config_alone():
    result = subprocess.run(
        ["make", "-n", "run", "CONFIG=config/presets/theory_paper.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    commands = [line for line in result.stdout.splitlines() if "featflow.names" in line or "snakemake" in line]
    assert any(line.endswith("featflow.names config/presets/theory_paper.yaml") for line in commands), commands
    assert any(line.endswith("--configfile config/presets/theory_paper.yaml") for line in commands), commands
    assert not any("config/config.yaml" in line for line in commands), commands
