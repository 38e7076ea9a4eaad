"""What a claim is, what it is read from, and the statistics its readers need (bootstrap, binomial, chance angle).

A :class:`Claim` names its paper, its statistic in words, the paper's value or direction, the null, its
precondition, the kind of experiment it applies to and a reader. A :class:`Unit` is one replicate (training seed)
of one experiment of that kind: its files and the config facts the readers need, planned from the config by the
registry of the kind's branch (:mod:`featflow.claims.registry`). Readers read the files through a
:class:`Source` (HDF5 and tables through :mod:`featflow.store`), never the branches' code: this unit imports only
core and ``metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featflow import store
from featflow.claims.verdict import Reading

RESAMPLES = 2000


@dataclass(frozen=True)
class Unit:
    """One replicate of one experiment: ``kind`` of experiment, its configured (base) name, the training seed,
    the replicate's name, the files the claims read (role -> path) and the config facts they need; ``seed`` of
    the bootstraps (the run's seed)."""

    kind: str
    experiment: str
    seed: int
    name: str
    files: Mapping[str, str]
    _: KW_ONLY
    facts: Mapping[str, Any] = field(default_factory=dict)
    boot_seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "experiment": self.experiment,
            "seed": self.seed,
            "name": self.name,
            "files": dict(self.files),
            "facts": dict(self.facts),
            "boot_seed": self.boot_seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Unit:
        return cls(**{**data, "files": dict(data["files"]), "facts": dict(data.get("facts") or {})})


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A claim of a paper a run can test (see the module docstring); ``read(unit, source)`` -> :class:`Reading`.
    ``figure`` is the figure that shows it, a path template with ``{name}`` (the experiment's configured name)."""

    id: str
    paper: str
    statistic: str
    expected: str
    direction: str
    null: float
    null_text: str
    precondition: str
    kind: str
    figure: str
    read: Callable[[Unit, Source], Reading]


class Source:
    """Cached readers of the run's files (several claims read one file)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, what: str, path: str, load: Callable[[], Any]) -> Any:
        key = (what, str(path))
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def table(self, path: str | Path) -> Any:
        """A table written by ``store.write_table``: CSV, or Parquet with its ``DataFrame.attrs``; checksum verified
        (:func:`featflow.store.read_table`)."""
        return self._get("table", path, lambda: store.read_table(path))

    def h5(self, path: str | Path, kind: str | None = None) -> dict[str, Any]:
        return self._get("h5", path, lambda: store.read_h5(path, kind))

    def attrs(self, path: str | Path, kind: str | None = None) -> dict[str, Any]:
        return self._get("attrs", path, lambda: store.read_attrs(path, kind))

    def shapes(self, path: str | Path, kind: str | None = None) -> dict[str, tuple[int, ...]]:
        return self._get("shapes", path, lambda: store.shapes(path, kind))


def bootstrap(
    stat: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...], seed: int, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """``stat`` of paired ``arrays`` (rows resampled together) and its percentile bootstrap 95% interval.
    ``stat(*arrays)`` reduces the last axis, so that it runs on all (resamples, n) draws at once."""
    arrays = tuple(np.asarray(a, float) for a in arrays)
    n = arrays[0].shape[0]
    value = float(stat(*arrays))
    if n < 2:
        return value, math.nan, math.nan
    rows = np.random.default_rng(seed).integers(0, n, (resamples, n))
    draws = np.asarray(stat(*(a[rows] for a in arrays)), float)
    low, high = np.nanquantile(draws, [0.025, 0.975])
    return value, float(low), float(high)


def median(x: np.ndarray) -> np.ndarray:
    return np.median(x, axis=-1)


def mean(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=-1)


def binomial_ci(p: float, n: int) -> tuple[float, float]:
    """Normal-approximation 95% interval of a proportion ``p`` over ``n`` trials (the files keep no per-trial
    outcomes to resample)."""
    half = 1.96 * math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.nan
    return p - half, p + half


def chance_angle(n: int, m: int, quantile: float = 0.05) -> float:
    """The angle (deg) to a fixed ``m``-dim subspace of R^n that a uniformly random direction comes within only with
    probability ``quantile`` (its squared cosine is Beta(m/2, (n-m)/2)): the null of "v lies in that subspace"."""
    from scipy.stats import beta

    cos2 = beta.ppf(1 - quantile, m / 2, (n - m) / 2)
    return float(np.degrees(np.arccos(np.sqrt(cos2))))
