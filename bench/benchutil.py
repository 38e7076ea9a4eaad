"""Pieces the benchmark scripts share: CPU-time repeats and the planted non-negative activations they fit.

Imported by the scripts in this folder (run as ``python bench/<name>.py``, so the folder is on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def cpu_runs(fn: Callable[[], T], repeats: int = 3) -> tuple[T, list[float]]:
    """(last result, CPU seconds of the process for each of ``repeats`` calls): the machine is shared, so CPU time."""
    times: list[float] = []
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return out, times


def activations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Non-negative activations with a planted sparse structure (96 sparse atoms) plus noise."""
    rng = np.random.default_rng(seed)
    atoms = rng.random((96, d)) * (rng.random((96, d)) < 0.3)
    codes = rng.exponential(1.0, (n, 96)) * (rng.random((n, 96)) < 0.1)
    return codes @ atoms + 0.05 * rng.random((n, d))
