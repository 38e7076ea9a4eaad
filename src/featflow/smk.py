"""The only Snakemake-aware module: a rule script opens a :func:`job` and makes one package call inside it.

A job logs to the rule's log file (tqdm progress included), sets the thread count, picks the device from
``resources.gpu`` (CPU with a log line when no GPU is visible) and carries the provenance attributes of the
rule's stage, built from its ``params`` (``stage``, ``spec``, ``seed``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from featflow import repro

log = logging.getLogger("featflow")


def pick_device(gpus: int) -> torch.device:
    """``cuda`` when the rule asks for a GPU and one is visible, else ``cpu`` (logged)."""
    if gpus > 0 and torch.cuda.is_available():
        return torch.device("cuda")
    if gpus > 0:
        log.info("resources.gpu = %d but no GPU is visible: running on the CPU", gpus)
    return torch.device("cpu")


@dataclass
class Job:
    """What a rule script needs: its spec and seed, device, provenance attributes."""

    spec: dict[str, Any]
    seed: int
    device: torch.device
    attrs: dict[str, Any]


@contextlib.contextmanager
def _logging_to(path: str) -> Iterator[None]:
    """Send featflow's logging and stderr (tqdm bars, warnings) to ``path`` for the duration of the job."""
    with open(path, "a", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_stderr = sys.stderr
        sys.stderr = stream
        try:
            yield
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)


@contextlib.contextmanager
def job(snakemake: Any) -> Iterator[Job]:
    """Open a job for the running rule: logging, threads, device and provenance."""
    log_path = snakemake.log[0]
    with _logging_to(log_path):
        torch.set_num_threads(max(1, int(snakemake.threads)))
        device = pick_device(int(getattr(snakemake.resources, "gpu", 0)))
        params = snakemake.params
        stage = params.stage
        seed = int(params.seed)
        repro.seed_everything(seed)
        attrs = repro.provenance(stage, params.spec, seed)
        log.info("rule %s on %s, %d threads, code %s", snakemake.rule, device, snakemake.threads, attrs["code_version"])
        yield Job(spec=params.spec, seed=seed, device=device, attrs=attrs)
