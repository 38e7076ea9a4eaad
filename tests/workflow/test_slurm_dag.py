"""The tiny DAG dry-run through profiles/slurm (the executor plugin's own resources, no cluster needed): a site's
partition and account reach every job, the local profile's settings (its GPU cap, its default resources) do not,
the few-second figure, table and summary jobs are local rules while every costly job goes to the queue, and
profiles/slurm/README.md lists exactly the rules that may ask for a GPU."""

from __future__ import annotations

import os
import re

import pytest

from tests.unit.test_slurm_profile import gpu_rules
from tests.workflow.conftest import ROOT, copy_workflow, planned_job_blocks, snakemake

SITE = {"slurm_partition": "gpu", "slurm_account": "my_lab"}


@pytest.fixture(scope="module")
def slurm_dry_run(tmp_path_factory: pytest.TempPathFactory):
    """A dry run of the tiny DAG under a copy of profiles/slurm with the site's partition and account uncommented."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm") / "wf", ROOT / "tests" / "workflow" / "tiny.yaml")
    profile = workdir / "profiles" / "slurm" / "config.yaml"
    text = profile.read_text()
    for key, value in SITE.items():
        text, count = re.subn(rf"^  # {key}: \S+$", f"  {key}: {value}", text, flags=re.M)
        assert count == 1, f"{profile}: no commented '{key}' under default-resources"
    profile.write_text(text)
    result = snakemake(workdir, "-n", profile="slurm")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, result


def test_site_partition_and_account_reach_every_job(slurm_dry_run) -> None:
    _, result = slurm_dry_run
    output = result.stdout + result.stderr
    assert "workflow specific profile" not in output  # no profile is loaded besides the one named
    jobs = planned_job_blocks(result)
    assert len(jobs) > 30, output[-3000:]
    for rule, resources in jobs:
        for key, value in SITE.items():
            assert resources.get(key) == value, f"job of rule {rule}: {key} missing from {resources}"


def test_the_local_gpu_cap_does_not_apply(slurm_dry_run, monkeypatch: pytest.MonkeyPatch) -> None:
    from snakemake.cli import parse_args

    workdir, _ = slurm_dry_run
    monkeypatch.chdir(workdir)
    monkeypatch.setitem(os.environ, "PYTHONPATH", str(workdir / "src"))
    assert "gpu" in parse_args(["--profile", "profiles/local", "-n"])[1].resources  # where the cap lives
    _, args = parse_args(["--profile", "profiles/slurm", "-n"])
    assert not args.resources, f"a global resource limit reached the cluster run: {args.resources}"
    assert not (ROOT / "profiles" / "default").exists()  # Snakemake would load it as the workflow profile


def localrules() -> set[str]:
    """The Snakefile's ``localrules:`` (Snakemake itself refuses a name that is no rule)."""
    block = re.search(r"^localrules:\n((?:    \w+,?\n)+)", (ROOT / "Snakefile").read_text(), flags=re.M)
    assert block, "the Snakefile has no localrules: block"
    return {name.strip(" ,") for name in block.group(1).splitlines()}


def test_short_jobs_are_local_rules_and_costly_jobs_are_queued(slurm_dry_run) -> None:
    # a dry run prints no local/queued decision, so the rules' resources come from it and the decision from the
    # Snakefile (in a run, Snakemake runs these on its own host: workflow.is_local)
    _, result = slurm_dry_run
    jobs = planned_job_blocks(result)
    local = localrules()
    planned = {rule for rule, _ in jobs}
    short = {"summary"} | {rule for rule in planned if re.search(r"_(figures?|table)$", rule)}
    assert short <= local, f"add the figure/table rules to the Snakefile's localrules: {sorted(short - local)}"
    assert local <= planned, sorted(local - planned)  # the tiny config plans every one of them
    for rule, resources in jobs:
        cheap = int(resources["gpu"]) == 0 and int(resources["runtime"]) <= 10
        assert cheap or rule not in local, f"{rule} is a localrule but costly: {resources}"
    assert {"train", "activations", "dictionary", "fv_optimize", "theory_train"}.isdisjoint(local)


def test_slurm_readme_lists_exactly_the_gpu_rules(slurm_dry_run) -> None:
    readme = (ROOT / "profiles" / "slurm" / "README.md").read_text()
    listed = re.search(r"declare `gpu: 1` \(([^;)]*)[;)]", readme)
    assert listed, "profiles/slurm/README.md: no '(rule, ...;' list after 'declare `gpu: 1`'"
    documented = {name.strip() for name in listed.group(1).split(",")}
    assert documented == gpu_rules(), (
        f"missing {sorted(gpu_rules() - documented)}, extra {sorted(documented - gpu_rules())}"
    )
    # and the parse agrees with the rules as Snakemake sees them: every job planned with a GPU is of a listed rule
    _, result = slurm_dry_run
    planned_gpu = {rule for rule, res in planned_job_blocks(result) if int(res.get("gpu", 0)) > 0}
    assert planned_gpu and planned_gpu <= documented, sorted(planned_gpu - documented)
