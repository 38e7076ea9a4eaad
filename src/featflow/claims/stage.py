"""Stage of the claims rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage); the work is in
featflow.claims.registry. Imports stay inside the stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def claims(spec: list[dict[str, Any]], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Every registered claim's verdict over the replicates of each experiment it applies to: results/claims.csv."""
    from featflow.claims.registry import write_claims

    write_claims(spec, outputs[0])
