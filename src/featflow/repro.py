"""Seeds, provenance attributes and per-stage code hashes.

``code_version(stage)`` hashes the package files a stage uses, so that Snakemake (which sees it in a rule's
``params``) reruns a stage exactly when its algorithm code changed, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import platform
import random
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parent

# Files shared by every stage: a change to them may change any output.
_CORE = ("store.py", "repro.py", "config.py")

# Package files (or folders) each stage depends on, relative to the package root.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "data": ("data", "theory/shi_data.py"),
    "train": ("data", "models", "frequency/attacks.py"),
    "activations": ("data", "models", "activations.py"),
    "fv": ("models", "fv"),  # fv_targets, fv_optimize
    "ifv": ("models", "fv", "ifv"),  # jacobian, critical_space, ifv, reoptimize
    "fv_plots": ("plots/fv.py",),
    "frequency": ("data", "models", "frequency", "metrics/cka.py"),  # fourier_mask, adversarial_maps, idcor
    "frequency_plots": ("frequency", "plots/frequency.py"),
    "theory": ("theory",),  # theory_train, theory_baselines, theory_alignment
    "theory_plots": ("theory", "plots/theory.py"),
    "dictionary": ("data", "models", "activations.py", "dictionary", "complexity"),  # dictionary, codes
    "complexity": ("data", "models", "activations.py", "dictionary", "metrics", "complexity"),  # metrics, table
    "complexity_plots": (
        "data",
        "models",
        "activations.py",
        "dictionary",
        "metrics",
        "complexity",
        "plots/complexity.py",
    ),
}


def _stage_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for rel in (*_CORE, *paths):
        target = PACKAGE_ROOT / rel
        if not target.exists():
            raise ValueError(f"code_version: package path '{rel}' does not exist under {PACKAGE_ROOT}")
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return sorted(set(files))


@cache
def code_version(stage: str) -> str:
    """A short SHA-256 of the package source files that ``stage`` uses."""
    if stage not in STAGE_CODE:
        raise ValueError(f"code_version: unknown stage '{stage}', expected one of {sorted(STAGE_CODE)}")
    digest = hashlib.sha256()
    for path in _stage_files(STAGE_CODE[stage]):
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch's global generators (for library code that uses them) and return a
    NumPy Generator for featflow's own draws, which never use global state."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def provenance(stage: str, spec: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Attributes every featflow file records: stage, its config subset, seed, code and library versions."""
    return {
        "stage": stage,
        "config": json.dumps(spec, sort_keys=True, default=str),
        "seed": -1 if seed is None else int(seed),
        "code_version": code_version(stage),
        "featflow_version": _version("featflow"),
        "torch_version": _version("torch"),
        "numpy_version": _version("numpy"),
        "python_version": platform.python_version(),
    }
