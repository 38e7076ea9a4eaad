"""Rule jacobian: Dy (batched VJPs) and Dy Dy^T of every realization."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.ifv.stage import run_jacobian

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_jacobian(
        FVSpec.from_dict(job.spec),
        snakemake.input.checkpoint,  # noqa: F821
        snakemake.input.realizations,
        snakemake.output[0],
        job.device,
        job.attrs,
    )  # noqa: F821
