"""Fixtures of the cluster tests: a real single-node SLURM cluster on localhost and a tiny workflow copy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster_helpers import FAKE_GPUS, ROOT, STATE, Cluster, daemons_alive


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """The running local cluster with ``FAKE_GPUS`` fake GPUs; stopped (or restored) at the end."""
    was_running = daemons_alive(STATE)
    cluster = Cluster(STATE, FAKE_GPUS)
    try:
        cluster.up(FAKE_GPUS)
        yield cluster
    finally:
        if was_running:  # brought up before the tests (.ci/run): leave it running, as it was configured
            cluster.up(FAKE_GPUS)
        else:
            cluster.down()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the workflow (Snakefile, rules, scripts, schemas, profiles, package) in a temp folder."""
    work = tmp_path_factory.mktemp("cluster")
    shutil.copy(ROOT / "Snakefile", work / "Snakefile")
    for folder in ("workflow", "profiles", "envs", "src", "config"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return work
