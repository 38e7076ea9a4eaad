"""The Makefile's user-facing behaviour, read from `make -n` (nothing runs): the set-up shows its steps and pip's
progress, and `make run` uses the local profile and ends by saying where the results and the report are."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")


def _plan(*args: str) -> list[str]:
    result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.splitlines()


def test_setup_prints_each_step_and_pip_progress() -> None:
    lines = _plan("-B", "setup")
    steps = [line for line in lines if line.startswith('echo "featflow setup')]
    assert len(steps) == 4, lines  # 1/3, 2/3, 3/3, done
    (lock,) = [line for line in lines if "-r requirements.txt" in line]
    assert " -q " not in lock  # pip's progress shows during the long install


def test_run_uses_the_local_profile_and_ends_naming_results_and_report() -> None:
    lines = _plan("-o", ".venv/.featflow-setup", "run")
    (command,) = [line for line in lines if "snakemake" in line and "--profile" in line]
    assert "--profile profiles/local" in command
    tail = "\n".join(lines[lines.index(command) + 1 :])
    assert "results/" in tail and "make report" in tail and "results/report.html" in tail
