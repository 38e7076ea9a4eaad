"""Rule fv_optimize: one FV realization per target (batched Adam, then L-BFGS)."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.fv.stage import run_optimize

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_optimize(
        FVSpec.from_dict(job.spec),
        snakemake.input.checkpoint,
        snakemake.input.targets,  # noqa: F821
        snakemake.output[0],
        job.device,
        job.seed,
        job.attrs,
    )  # noqa: F821
