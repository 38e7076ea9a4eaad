"""Every registered claim, the plan of what they read in a run, and the claims table (``results/claims.csv``).

:func:`plan` lists, from an expanded config (:func:`featflow.seeds.expand`), every replicate of every experiment
a registered claim applies to, with its files (the claims rule's inputs: adding a seed adds only its files);
:func:`evaluate` reads them and gives one row per claim and (configured) experiment, with its verdict over the
replicates (:func:`featflow.claims.verdict.verdict`). A claim with no experiment of its kind in the run gets one
row saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from featflow.claims import complexity, frequency, fv, theory
from featflow.claims.core import Claim, Source, Unit
from featflow.claims.verdict import NOT_APPLICABLE, Verdict, verdict

CLAIMS: list[Claim] = [*complexity.CLAIMS, *fv.CLAIMS, *frequency.CLAIMS, *theory.CLAIMS]
PLANNERS = (complexity.units, fv.units, frequency.units, theory.units)
KIND_SECTIONS = {
    "complexity": "complexity.experiments",
    "flow": "complexity.flow.experiments",
    "temporal": "temporal.experiments",
    "fv": "fv",
    "masks": "frequency.masks.models",
    "maps": "frequency.maps.models",
    "idcor": "frequency.idcor.experiments",
    "theory": "theory",
}
COLUMNS = [
    "claim",
    "experiment",
    "paper",
    "statistic",
    "value",
    "spread_low",
    "spread_high",
    "seeds",
    "verdict",
    "reason",
    "figure",
]


def plan(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every replicate (unit) the registered claims read in a run of the expanded ``config``, as plain dicts (the
    claims rule's ``params.spec``)."""
    seed = int(config.get("seed", 0))
    return [unit.as_dict() for planner in PLANNERS for unit in planner(config, seed)]


def inputs(units: Sequence[Mapping[str, Any]]) -> list[str]:
    """The files of every unit, each once, in plan order."""
    return list(dict.fromkeys(path for unit in units for path in unit["files"].values()))


def _number(x: float) -> float:
    return round(x, 6) if math.isfinite(x) else math.nan


def evaluate(units: Sequence[Mapping[str, Any]], claims: Sequence[Claim] = CLAIMS) -> Any:
    """The claims table: one row per claim and experiment (:data:`COLUMNS`)."""
    import pandas as pd

    parsed = [Unit.from_dict(u) for u in units]
    src = Source()
    rows = []
    for claim in claims:
        of_kind = [u for u in parsed if u.kind == claim.kind]
        experiments = list(dict.fromkeys(u.experiment for u in of_kind))
        if not experiments:
            reason = f"no {KIND_SECTIONS.get(claim.kind, claim.kind)} in this run's config"
            absent = Verdict(
                NOT_APPLICABLE, reason, value=math.nan, spread_low=math.nan, spread_high=math.nan, seeds=()
            )
            rows.append(_row(claim, "", absent, figure=""))
            continue
        for exp in experiments:
            replicas = [u for u in of_kind if u.experiment == exp]
            result = verdict([(u.seed, claim.read(u, src)) for u in replicas], claim.direction, claim.null)
            figure = claim.figure.format(name=replicas[0].name)
            rows.append(_row(claim, exp, result, figure=figure))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(claim: Claim, experiment: str, result: Verdict, *, figure: str) -> dict[str, Any]:
    word, reason = result.verdict, result.reason
    return {
        "claim": claim.id,
        "experiment": experiment,
        "paper": claim.paper,
        "statistic": f"{claim.statistic}; paper: {claim.expected}; null: {claim.null_text}",
        "value": _number(result.value),
        "spread_low": _number(result.spread_low),
        "spread_high": _number(result.spread_high),
        "seeds": " ".join(str(s) for s in result.seeds),
        "verdict": word,
        "reason": reason if word != NOT_APPLICABLE else f"{reason} (precondition: {claim.precondition})",
        "figure": figure,
    }


def write_claims(units: Sequence[Mapping[str, Any]], csv: str | Path) -> Any:
    """Evaluate every registered claim on the plan's files and write the claims table."""
    from featflow import store

    table = evaluate(units)
    store.write_table(table, csv)
    return table
