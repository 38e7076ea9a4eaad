"""The DAG on a real SLURM cluster through profiles/slurm: every rule an sbatch job with its declared resources.

One module, run in order on one workflow copy: (1) data -> train -> 2 activation shards, plus one job that
fails at run time (a model whose weights fit no layer), GPU requests (declared and overridden) as SLURM saw
them; (2) the rerun builds only what is missing (the broken experiment, now on a good model, and the merge of
the shards); (3) a GPU model the cluster lacks and a cluster without GPUs fail at once with sbatch's message.
Each DAG level costs 15-70 s (Snakemake's status polling, growing 2, 14, 36, 68 s, and each job's start-up).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from featflow import store
from tests.cluster.cluster_helpers import Cluster, run_snakemake, write_config

pytestmark = pytest.mark.cluster

GOOD = "results/planted/activations/test.h5"
BROKEN = "results/broken/activations/test.h5"


def slurm_jobs(work: Path) -> dict[int, tuple[str, str]]:
    """SLURM job id -> (rule, wildcards) from the plugin's logs: .snakemake/slurm_logs/rule_<rule>/<wc>/<id>.log"""
    jobs = {}
    for path in (work / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log"):
        if path.stem.isdigit():
            jobs[int(path.stem)] = (path.relative_to(work / ".snakemake" / "slurm_logs").parts[0][5:], path.parent.name)
    return jobs


def job_info(cluster: Cluster, job_id: int) -> dict[str, str]:
    """``scontrol show job`` as a dict (finished jobs stay visible for MinJobAge = 300 s)."""
    text = cluster.slurm("scontrol", "-o", "show", "job", str(job_id))
    return dict(re.findall(r"(\w+)=(\S*)", text))


def gpus_requested(info: dict[str, str]) -> int:
    match = re.search(r"gres[/:]gpu(?::\w+)?[:=](\d+)", info.get("TresPerJob", ""))
    return int(match.group(1)) if match else 0


def test_dag_runs_as_slurm_jobs_and_surfaces_a_failure(slurm_cluster: Cluster, workdir: Path) -> None:
    write_config(workdir, broken=True)
    # activations_shard:gpu=0 from the command line, as a CPU-only site would set it for every GPU rule;
    # --keep-going: the shards do not depend on the failing train job, so they run whatever the timing.
    rc, out = run_snakemake(workdir, GOOD, BROKEN, "--keep-going", "--set-resources", "activations_shard:gpu=0")
    assert rc != 0, out[-3000:]

    # data -> (train cnn -> 2 shards -> merge | train bad, which fails).
    jobs = slurm_jobs(workdir)
    merged = (workdir / GOOD).exists()
    assert merged, out[-3000:]
    assert sorted(jobs.values()) == sorted(
        [
            ("train", "bad"),
            ("activations_shard", "planted_test_0"),
            ("activations_shard", "planted_test_1"),
            ("data", "planted"),
            ("train", "cnn"),
        ]
        + [("activations", "planted_test")] * merged
    ), out
    info = {key: job_info(slurm_cluster, j) for j, key in jobs.items()}
    assert info[("train", "bad")]["JobState"] == "FAILED"
    assert {i["JobState"] for key, i in info.items() if key != ("train", "bad")} == {"COMPLETED"}

    # Each rule's gpu reached sbatch as --gpus=N: declared (train, activations), overridden (shards), none (data).
    assert {key: gpus_requested(i) for key, i in info.items() if key[0] != "activations_shard"} == {
        ("data", "planted"): 0,
        ("train", "cnn"): 1,
        ("train", "bad"): 1,
        **({("activations", "planted_test"): 0} if merged else {}),
    }  # a merge needs no GPU
    assert gpus_requested(info[("activations_shard", "planted_test_0")]) == 0

    # The failed job's logs are named in Snakemake's output and hold the error.
    (failed_id,) = [j for j, key in jobs.items() if key == ("train", "bad")]
    slurm_log = f".snakemake/slurm_logs/rule_train/bad/{failed_id}.log"
    assert slurm_log in out and (workdir / slurm_log).is_file(), out[-3000:]
    assert "logs/train/bad.log" in out
    assert "no_such_layer" in (workdir / "logs/train/bad.log").read_text()
    assert not (workdir / BROKEN).exists() and not (workdir / "results/models/bad.pt").exists()


def test_rerun_builds_only_the_missing_outputs(slurm_cluster: Cluster, workdir: Path) -> None:
    missing = [("activations", "broken_test")] + [("activations", "planted_test")] * (not (workdir / GOOD).exists())
    finished = [workdir / p for p in ("results/data/planted.h5", "results/models/cnn.pt")]
    mtimes = [p.stat().st_mtime_ns for p in finished]
    before = set(slurm_jobs(workdir))
    write_config(workdir, broken=False)
    rc, out = run_snakemake(workdir, GOOD, BROKEN)
    assert rc == 0, out[-3000:]
    new = {key: j for j, key in slurm_jobs(workdir).items() if j not in before}
    assert sorted(new) == sorted(missing), new  # the shards, data and model are not built again
    assert [p.stat().st_mtime_ns for p in finished] == mtimes

    # The merge of 2 shards, temporary shard files removed, agrees with one job (broken, now fixed).
    two, one = store.read_h5(workdir / GOOD, "activations"), store.read_h5(workdir / BROKEN, "activations")
    np.testing.assert_array_equal(two["indices"], np.arange(24))
    assert two["layers"]["act"].shape == (24, 16)
    assert not list((workdir / "results/planted/activations/shards").glob("*.h5"))
    for name in ("block1", "act"):
        np.testing.assert_allclose(two["layers"][name], one["layers"][name], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(two["labels"], one["labels"])


def test_missing_gpu_model_fails_at_submission(slurm_cluster: Cluster, workdir: Path) -> None:
    rc, out = run_snakemake(
        workdir, "results/models/cnn.pt", "--forcerun", "train", "--set-resources", "train:gpu_model=h100", idle_s=300
    )
    assert rc != 0
    assert "Requested node configuration is not available" in out, out[-3000:]


def test_cluster_without_gpus_fails_at_submission(slurm_cluster: Cluster, workdir: Path) -> None:
    slurm_cluster.up(gpus=0)
    rc, out = run_snakemake(workdir, "results/models/cnn.pt", "--forcerun", "train", idle_s=300)
    assert rc != 0
    assert "Invalid generic resource" in out, out[-3000:]
