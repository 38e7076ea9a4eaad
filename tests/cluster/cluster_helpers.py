"""Helpers of the cluster tests: the local SLURM cluster (tests/cluster/slurm_up.sh), a tiny config, Snakemake runs.

The cluster is started once per session and stopped by pid in the teardown (left running when it was running
before, e.g. brought up by .ci/run). Machines that cannot host it (not root, no apt-get) skip
these tests with the reason; a cluster that was installed but does not come up fails them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from tests.watch import run_watched

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("slurm_up.sh")
STATE = Path(os.environ.get("FEATFLOW_SLURM_DIR", "/tmp/featflow-slurm"))
FAKE_GPUS = 4  # three GPU jobs of one DAG level run side by side


def daemons_alive(state: Path) -> bool:
    for name in ("slurmctld", "slurmd"):
        pidfile = state / "run" / f"{name}.pid"
        try:
            os.kill(int(pidfile.read_text()), 0)
        except (OSError, ValueError):
            return False
    return True


@dataclass
class Cluster:
    """Handle on the local test cluster (state folder, fake GPU count)."""

    state: Path
    gpus: int

    def _script(self, *args: str, gpus: int | None = None) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "FEATFLOW_SLURM_DIR": str(self.state),
            "FEATFLOW_SLURM_GPUS": str(self.gpus if gpus is None else gpus),
        }
        try:  # apt-get is bounded by 600 s in the script, the daemons by 30 s
            return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=660)
        except subprocess.TimeoutExpired as err:
            pytest.skip(f"no local SLURM cluster: slurm_up.sh did not finish in {err.timeout} s (apt-get?)")

    def up(self, gpus: int) -> None:
        """Start the cluster with ``gpus`` fake GPUs (a running one is restarted only if its count differs)."""
        proc = self._script(gpus=gpus)
        if proc.returncode == 3:
            pytest.skip(f"no local SLURM cluster on this machine: {proc.stderr.strip()}")
        if proc.returncode != 0:
            pytest.fail(f"slurm_up.sh failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self.gpus = gpus

    def down(self) -> None:
        self._script("--stop")

    def slurm(self, *cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout


BAD_WEIGHTS = "bad_weights.pt"


def tiny_config(broken: bool) -> dict:
    """The embedded default with tiny data and model; experiment ``planted`` in 2 shards, and ``broken``, whose
    model, when ``broken``, loads a weights file that passes validation (a torch.save file) but fits no layer, so
    its train job fails at run time."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"]["planted"].update(n_train=64, n_test=24)
    config["models"]["cnn"].update(width=4)
    config["models"]["cnn"]["train"].update(epochs=1, batch_size=32, checkpoints=[1])
    if broken:
        config["models"]["bad"] = {"arch": "smallcnn", "dataset": "planted", "width": 4, "weights": BAD_WEIGHTS}
    planted = config["experiments"]["planted"]
    planted["activations"].update(shards=2, batch_size=16)  # only the test split is requested
    config["experiments"]["broken"] = {
        "model": "bad" if broken else "cnn",
        "dataset": "planted",
        "layers": ["block1", "act"],
        "activations": {"splits": ["test"], "batch_size": 16},
    }
    return config


def write_config(work: Path, broken: bool) -> None:
    torch.save({"no_such_layer.weight": torch.zeros(1)}, work / BAD_WEIGHTS)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(tiny_config(broken), sort_keys=False))


def run_snakemake(work: Path, *args: str, idle_s: float = 600) -> tuple[int, str]:
    """Run Snakemake through the SLURM profile; stopped (SIGINT, then kill) only when it makes no progress for
    ``idle_s`` seconds. Returns the exit status and the combined output."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        "--latency-wait",
        "5",
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(work / "src")}  # jobs import the copy's package, as tests/workflow does
    result, hung = run_watched(cmd, work, env, idle_s)
    out = result.stdout + result.stderr
    if hung:
        pytest.fail(f"snakemake on SLURM made no progress for {idle_s} s (hang?):\n{out[-4000:]}")
    return result.returncode, out
