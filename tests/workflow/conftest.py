"""Run the whole DAG once on tests/workflow/tiny.yaml in a temporary copy of the workflow."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.watch import run_watched

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
COPIED = ("Snakefile", "workflow", "envs", "profiles", "src")


def copy_workflow(dest: Path, config: Path) -> Path:
    """A runnable copy of the workflow in ``dest`` with ``config`` as its config/config.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "config").mkdir()
    shutil.copy2(config, dest / "config" / "config.yaml")
    return dest


def snakemake(
    workdir: Path, *args: str, profile: str | None = "local", idle_s: float = 600
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with 2 cores and ``profiles/<profile>`` (``make run``'s local profile unless
    told otherwise; none where the folder has no such profile); output captured as text. Fails only on a hang:
    ``idle_s`` seconds without output or log progress (a slow machine is not a failure)."""
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    profiles = ["--profile", f"profiles/{profile}"] if profile and (workdir / "profiles" / profile).is_dir() else []
    result, hung = run_watched([SNAKEMAKE, *profiles, "--cores", "2", *args], workdir, env, idle_s)
    if hung:
        pytest.fail(f"snakemake {' '.join(args)} made no progress for {idle_s} s (hang?):\n{result.stderr[-4000:]}")
    return result


def dry_run_after_edit(workdir: Path, module: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` in ``workdir`` with package ``module`` (path under src/featflow) edited, then restored."""
    target = workdir / "src" / "featflow" / module
    original = target.read_text()
    target.write_text(original + "\n# an edit\n")
    try:
        return snakemake(workdir, "-n")
    finally:
        target.write_text(original)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> count from the 'Job stats' table of a dry run (empty when nothing is to be done)."""
    lines = (result.stdout + result.stderr).splitlines()
    jobs: dict[str, int] = {}
    if "Job stats:" not in lines:
        return jobs
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs


def planned_job_blocks(result: subprocess.CompletedProcess) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources as printed, ``name=value``) of every job a dry run prints (a dry run shows no job as a
    ``localrule``: Snakemake leaves that decision to the run)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in (result.stdout + result.stderr).splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            jobs.append((header.group(1), {}))
        elif jobs and line.startswith("    resources: "):
            pairs = (item.split("=", 1) for item in line.removeprefix("    resources: ").split(", "))
            jobs[-1][1].update((name, value) for name, value in pairs)
    return jobs


@pytest.fixture(scope="session")
def dag_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp directory of one full run of the tiny DAG (fails the dependent tests if the run fails).
    ``FEATFLOW_DAG_RUN=DIR`` reuses a finished run there instead (a copy_workflow directory of tiny.yaml).

    Under pytest-xdist (``make test``: ``-n 2 --dist loadfile``) the first worker that asks builds the run in the
    session's shared temp folder while the other waits on a lock; each worker then tests its own copy (file
    times kept, so Snakemake sees a finished run), since some tests edit the run's config and dry-run it."""
    if os.environ.get("FEATFLOW_DAG_RUN"):
        return Path(os.environ["FEATFLOW_DAG_RUN"])
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    built, done, failed = shared / "dag", shared / "dag.done", shared / "dag.failed"
    with open(shared / "dag.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or its worker dies)
        if not done.exists() and not failed.exists():
            shutil.rmtree(built, ignore_errors=True)  # a half-built run of a worker that died
            copy_workflow(built, ROOT / "tests" / "workflow" / "tiny.yaml")
            result = snakemake(built)
            (done if result.returncode == 0 else failed).write_text(result.stderr[-6000:])
    if failed.exists():
        pytest.fail(f"tiny DAG failed:\n{failed.read_text()}")
    if not worker:
        return built
    mine = tmp_path_factory.mktemp("dag")
    shutil.copytree(built, mine, symlinks=True, dirs_exist_ok=True)
    return mine
