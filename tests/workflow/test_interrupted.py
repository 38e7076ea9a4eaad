"""A killed run: the next one names `--unlock`, unlocking loses nothing, and no half-written output is left.
A config with a YAML syntax error stops before any job with the file and line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.workflow.conftest import ROOT, SNAKEMAKE, copy_workflow, snakemake

TARGET = "results/data/planted.h5"


def _kill_once_locked(workdir: Path) -> None:
    """Start a run and SIGKILL its process group as soon as Snakemake has locked the folder."""
    process = subprocess.Popen(
        [SNAKEMAKE, "--cores", "1", TARGET],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = workdir / ".snakemake" / "locks"
    while process.poll() is None and not (locks.is_dir() and any(locks.iterdir())):
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_run_names_unlock_and_resumes(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf", ROOT / "tests" / "workflow" / "tiny.yaml")
    _kill_once_locked(workdir)
    locked = snakemake(workdir, TARGET)
    assert locked.returncode != 0
    assert "--unlock" in locked.stdout + locked.stderr
    assert snakemake(workdir, "--unlock").returncode == 0
    resumed = snakemake(workdir, TARGET)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (workdir / TARGET).stat().st_size > 0
    assert list((workdir / "results").rglob("*.tmp")) == []


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "tests" / "workflow" / "tiny.yaml").read_text() + "broken: [1, 2\n")
    workdir = copy_workflow(tmp_path / "wf", bad)
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config/config.yaml:" in output and "YAML syntax error" in output
    assert not (workdir / "results").exists()
