"""The only Snakemake-aware module: a rule script opens a :func:`job` and makes one package call inside it.

A job logs to the rule's log file (tqdm progress included), sets the thread count, picks the device from
``resources.gpu`` (CPU with a log line when no GPU is visible) and carries the provenance attributes of the
rule's stage, built from its ``params`` (``stage``, ``spec``, ``seed``).

Several GPUs on one machine: the local profile caps concurrent GPU jobs at :func:`local_gpu_cap` (``resources:
gpu``), and each GPU job claims a device of its own with an exclusive lock file held until the job's process
exits (:func:`pick_device`), so two concurrent jobs never share a device.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from featflow import repro

if TYPE_CHECKING:  # torch is imported by the functions that need it: the profile imports this module
    import torch

log = logging.getLogger("featflow")

# Lock files of the GPUs this process claimed: held open (and so locked) until the process exits.
_CLAIMED: list[IO[str]] = []


def gpu_count() -> int:
    """GPUs visible to a job on this machine: the entries of ``CUDA_VISIBLE_DEVICES`` when it is set, else the
    lines of ``nvidia-smi -L`` (0 without a driver). Cheap (no CUDA initialization), for the profile's cap."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines()) if listing.returncode == 0 else 0


def local_gpu_cap() -> int:
    """``resources: gpu`` of the local profile: the GPU count, or the CPU count on a machine without GPUs (GPU
    rules then run on the CPU, limited by ``--cores`` only)."""
    return gpu_count() or os.cpu_count() or 1


def _lock_dir() -> Path:
    """Machine-wide folder of the per-GPU lock files (``$TMPDIR``), shared by every featflow run of this user."""
    return Path(tempfile.gettempdir()) / f"featflow-gpus-{os.getuid()}"


def _claim_gpu(count: int, lock_dir: Path, poll_s: float = 0.5) -> int:
    """Index of a GPU no other featflow process holds, locked until this process exits; waits while all
    ``count`` are held (more GPU jobs than GPUs: the profile's ``resources: gpu`` cap was not applied)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    names = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    keys = names if len(names) == count else [str(i) for i in range(count)]  # physical ids where known
    waiting = False
    while True:
        for index, key in enumerate(keys):
            handle = open(lock_dir / f"gpu-{key}.lock", "w")  # noqa: SIM115 (held open: the lock lives with it)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _CLAIMED.append(handle)
            return index
        if not waiting:
            log.info(
                "all %d GPUs are held by other featflow jobs: waiting (cap them with --resources gpu=%d)", count, count
            )
            waiting = True
        time.sleep(poll_s)


def pick_device(gpus: int, lock_dir: Path | None = None) -> torch.device:
    """The GPU of this job when the rule asks for one (``resources.gpu`` > 0) and one is visible, else ``cpu``
    (logged). With several GPUs each job claims its own (:func:`_claim_gpu`) and makes it the current device."""
    import torch

    if gpus > 0 and torch.cuda.is_available():
        count = torch.cuda.device_count()
        index = _claim_gpu(count, lock_dir or _lock_dir()) if count > 1 else 0
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        return device
    if gpus > 0:
        log.info("resources.gpu = %d but no GPU is visible: running on the CPU", gpus)
    return torch.device("cpu")


@dataclass
class Job:
    """What a stage needs besides its spec and files (its ``ctx``): seed, device, threads, provenance attributes,
    the job's wildcards and the rule's other params (each by attribute)."""

    spec: dict[str, Any]
    seed: int
    attrs: dict[str, Any]
    _: KW_ONLY
    threads: int = 1
    gpus: int = 0  # the rule's resources.gpu
    wildcards: Any = None
    params: Any = None

    @functools.cached_property
    def device(self) -> torch.device:
        """The job's device (:func:`pick_device`), chosen when a stage first asks: figure and table jobs never
        import torch."""
        device = pick_device(self.gpus)
        log.info("device %s", device)
        return device


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


def _set_threads(threads: int) -> None:
    """Intra-op threads of torch: set now when the script imported it, else through ``OMP_NUM_THREADS``, which
    torch reads when a stage imports it later."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


@contextlib.contextmanager
def job(snakemake: Any) -> Iterator[Job]:
    """Open a job for the running rule: logging, threads, device and provenance."""
    log_path = snakemake.log[0]
    with _logging_to(log_path):
        threads = max(1, int(snakemake.threads))
        _set_threads(threads)
        params = snakemake.params
        seed = int(params.seed)
        repro.seed_everything(seed)
        attrs = repro.provenance(params.stage, params.spec, seed, params.code)
        log.info("rule %s, %d threads, code %s", snakemake.rule, threads, attrs["code_version"])
        gpus = int(getattr(snakemake.resources, "gpu", 0))
        yield Job(params.spec, seed, attrs, threads=threads, gpus=gpus, wildcards=snakemake.wildcards, params=params)


Files = Any
"""A rule's input or output files: paths by position and by name (``files[0]``, ``files.codes``), a named list
of paths for a named list of files. Snakemake's ``snakemake.input`` is one; a ``SimpleNamespace`` serves in tests."""

Stage = Callable[[Any, Files, Files, Job], None]
"""The one shape of every stage: ``stage(spec, inputs, outputs, ctx)``, with the rule's ``params.spec`` (its
cache key's config values), its input and output files and the :class:`Job`."""


def run(snakemake: Any, stage: Stage) -> None:
    """Run ``stage`` as the rule's job: what every rule script does (``smk.run(snakemake, stage.<rule>)``)."""
    with job(snakemake) as ctx:
        stage(ctx.spec, snakemake.input, snakemake.output, ctx)
