"""Rule fv_targets: Hoyer-sparse non-negative targets plus the canonical vectors."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.fv.stage import run_targets

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_targets(
        FVSpec.from_dict(job.spec),
        snakemake.input.checkpoint,
        snakemake.output[0],  # noqa: F821
        job.seed,
        job.attrs,
    )
