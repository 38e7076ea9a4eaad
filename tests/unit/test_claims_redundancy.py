"""The redundancy claim carries the spread of rho(K, redundancy) over mask seeds: a spread that straddles 0 or
exceeds the effect leaves it inconclusive, however tight the bootstrap over features; without 2+ mask seeds it
is not applicable. The localization claim reads rho(K, participation ratio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featflow import store
from featflow.claims.complexity import CLAIMS, read_localization, read_redundancy
from featflow.claims.core import Source, Unit
from featflow.claims.verdict import verdict

K = np.random.default_rng(0).uniform(0, 1, 128)


def _unit(tmp_path: Path, seed_rho: list[float] | None, **columns: np.ndarray) -> Unit:
    table = pd.DataFrame({"feature": np.arange(K.size), "complexity": K, **columns})
    if seed_rho is not None:
        table.attrs = {"redundancy_masks": 5000, "redundancy_seed_rho": {"0.5": seed_rho}}
    path = tmp_path / "features.parquet"
    store.write_table(table, path.with_suffix(".csv"), path)
    return Unit("complexity", "planted", 0, "planted", {"table": str(path)})


def _verdict(claim_id: str, reading) -> str:
    claim = next(c for c in CLAIMS if c.id == claim_id)
    return verdict([(0, reading)], claim.direction, claim.null).verdict


@pytest.mark.parametrize(
    ("seed_rho", "expected"),
    [
        ([-0.62, -0.60, -0.61, -0.63, -0.60], "reproduced"),  # settled: the bootstrap decides
        ([-0.45, 0.05, -0.2, -0.3, -0.1], "inconclusive"),  # the mask draws straddle 0
        ([-0.02, -0.7, -0.4, -0.3, -0.6], "inconclusive"),  # all negative, but they range wider than the effect
    ],
)
def test_redundancy_claim_widens_by_the_mask_seed_spread(tmp_path: Path, seed_rho: list[float], expected: str) -> None:
    noise = np.random.default_rng(1).normal(0, 0.5, K.size)
    reading = read_redundancy(_unit(tmp_path, seed_rho, **{"redundancy_p0.5": -K + noise}), Source())
    assert reading.ok and reading.value == pytest.approx(-0.615, abs=1e-3)
    assert reading.low <= min(seed_rho) and reading.high >= max(seed_rho)
    assert "mask seeds" in reading.reason
    assert _verdict("complexity_redundancy", reading) == expected


def test_redundancy_claim_needs_two_mask_seeds(tmp_path: Path) -> None:
    for seed_rho in (None, [-0.5]):
        reading = read_redundancy(_unit(tmp_path, seed_rho, **{"redundancy_p0.5": -K}), Source())
        assert not reading.ok and "mask seeds" in reading.reason


def test_localization_claim_reads_the_participation_ratio(tmp_path: Path) -> None:
    noise = np.random.default_rng(2).normal(0, 3, K.size)
    reading = read_localization(_unit(tmp_path, None, participation=30 - 20 * K + noise), Source())
    assert reading.value < -0.6 and _verdict("complexity_localization", reading) == "reproduced"
    spread = read_localization(_unit(tmp_path, None, participation=10 + 20 * K + noise), Source())
    assert _verdict("complexity_localization", spread) == "not reproduced"
    assert not read_localization(_unit(tmp_path, None), Source()).ok
