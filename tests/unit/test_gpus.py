"""Several GPUs on one machine: the local profile caps GPU jobs at the GPU count, each job claims its own GPU."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from featflow import smk

ROOT = Path(__file__).resolve().parents[2]

# A rule script that fakes a machine with two GPUs (torch sees no CUDA here), then picks its device.
JOB = """
import json, sys, time
start = time.time()
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 2
torch.cuda.set_device = lambda device: None
from featflow.smk import pick_device
device = pick_device(1)
claimed = time.time()
time.sleep(1.0)
json.dump({"device": str(device), "start": start, "claimed": claimed, "end": time.time()}, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize(("visible", "count"), [("0,1", 2), ("3", 1), ("", 0), ("-1", 0), ("GPU-a1,GPU-b2,GPU-c3", 3)])
def test_gpu_count_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch, visible: str, count: int) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert smk.gpu_count() == count
    assert smk.local_gpu_cap() == (count or os.cpu_count())


def _claim_and_report(lock_dir: str, queue: multiprocessing.Queue, release: multiprocessing.Event) -> None:
    queue.put(smk._claim_gpu(2, Path(lock_dir), poll_s=0.05))
    release.wait(10)


def test_each_process_claims_its_own_gpu_and_a_third_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ctx = multiprocessing.get_context("spawn")
    queue, releases = ctx.Queue(), [ctx.Event() for _ in range(3)]
    procs = [ctx.Process(target=_claim_and_report, args=(str(tmp_path), queue, r)) for r in releases]
    for proc in procs[:2]:
        proc.start()
    first = sorted(queue.get(timeout=30) for _ in range(2))
    assert first == [0, 1]
    procs[2].start()
    with pytest.raises(Exception):  # noqa: B017 (queue.Empty): both GPUs are held, the third process waits
        queue.get(timeout=1.5)
    releases[0].set()  # the first process exits and its lock goes with it
    assert queue.get(timeout=30) in (0, 1)
    for release, proc in zip(releases, procs, strict=True):
        release.set()
        proc.join(10)


def test_local_profile_caps_gpu_jobs_and_pins_each_to_its_own_device(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            f"""
            rule all:
                input: expand("out/{{i}}.json", i=range(3))
            rule gpu_job:
                output: "out/{{i}}.json"
                resources: gpu=1
                shell: "{sys.executable} job.py {{output}}"
            """
        )
    )
    (tmp_path / "tmp").mkdir()
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "0,1",  # the profile's cap: 2 GPU jobs at once
        "TMPDIR": str(tmp_path / "tmp"),  # this test's own GPU lock files
        "PYTHONPATH": str(ROOT / "src"),
    }
    snakemake = Path(sys.executable).parent / "snakemake"
    run = subprocess.run(
        [str(snakemake), "--profile", str(ROOT / "profiles" / "local"), "--cores", "4"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = [json.loads((tmp_path / "out" / f"{i}.json").read_text()) for i in range(3)]
    events = sorted([(j["start"], 1) for j in jobs] + [(j["end"], -1) for j in jobs])
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2  # 4 cores would run all 3 jobs at once: the gpu cap holds them to 2
    for a in jobs:
        for b in jobs:
            if a is not b and a["claimed"] < b["end"] and b["claimed"] < a["end"]:
                assert a["device"] != b["device"]
    assert {j["device"] for j in jobs} == {"cuda:0", "cuda:1"}
