"""Run the whole DAG once on tests/workflow/tiny.yaml in a temporary copy of the workflow."""

from __future__ import annotations

import fcntl
import os
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


def snakemake(workdir: Path, *args: str, idle_s: float = 600) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with 2 cores; output captured as text. Fails only on a hang: ``idle_s``
    seconds without output or log progress (a slow machine is not a failure)."""
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    result, hung = run_watched([SNAKEMAKE, "--cores", "2", *args], workdir, env, idle_s)
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
