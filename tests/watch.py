"""Run a long command and stop it only when it hangs: no output and no log file growing for ``idle_s`` seconds.

Wall-clock limits fail slow machines; a watchdog on progress fails only a hang (issue 11: a loaded 2-core
machine pushed a healthy tiny DAG past a fixed 900 s limit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# Where a Snakemake run shows progress besides its own output: job logs (tqdm bars included) and SLURM logs.
PROGRESS_DIRS = ("logs", ".snakemake/log", ".snakemake/slurm_logs")


def _latest_change(root: Path) -> float:
    """Latest modification time of any file under the progress folders of ``root`` (0 when none)."""
    latest = 0.0
    for name in PROGRESS_DIRS:
        for dirpath, _, files in os.walk(root / name):
            for file in files:
                try:
                    latest = max(latest, os.stat(os.path.join(dirpath, file)).st_mtime)
                except FileNotFoundError:  # rotated or renamed while walking
                    continue
    return latest


def run_watched(
    cmd: Sequence[str], cwd: Path, env: dict[str, str], idle_s: float = 600, poll_s: float = 2
) -> tuple[subprocess.CompletedProcess, bool]:
    """Run ``cmd``; returns (completed process with stdout and stderr, whether it was stopped for hanging).

    A hang is ``idle_s`` seconds without a new output line or a changed log file; the process group is then sent
    SIGINT (Snakemake cancels its jobs on it) and killed 30 s later.
    """
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}
    last_line = [time.monotonic()]

    def pump(name: str) -> None:
        for line in getattr(proc, name):
            chunks[name].append(line)
            last_line[0] = time.monotonic()

    readers = [threading.Thread(target=pump, args=(name,), daemon=True) for name in chunks]
    for reader in readers:
        reader.start()
    hung = False
    last_files, last_file_seen = _latest_change(cwd), time.monotonic()
    while proc.poll() is None:
        time.sleep(poll_s)
        files = _latest_change(cwd)
        if files != last_files:
            last_files, last_file_seen = files, time.monotonic()
        if time.monotonic() - max(last_line[0], last_file_seen) > idle_s:
            hung = True
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    result = subprocess.CompletedProcess(cmd, proc.returncode, "".join(chunks["stdout"]), "".join(chunks["stderr"]))
    return result, hung
