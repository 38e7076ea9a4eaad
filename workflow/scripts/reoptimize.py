"""Rule reoptimize: SSIM after re-optimizing realizations under target / prediction / response / random."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.ifv.stage import run_reoptimize

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_reoptimize(
        FVSpec.from_dict(job.spec),
        snakemake.input.checkpoint,  # noqa: F821
        snakemake.input.realizations,
        snakemake.input.ifv,
        snakemake.output[0],  # noqa: F821
        job.device,
        job.seed,
        job.attrs,
    )
