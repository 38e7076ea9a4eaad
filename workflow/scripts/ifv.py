"""Rule ifv: closed-form predicted objectives and their angular distance to the targets."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.ifv.stage import run_ifv

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_ifv(
        FVSpec.from_dict(job.spec),
        snakemake.input.realizations,
        snakemake.input.jacobian,  # noqa: F821
        snakemake.input.critical,
        snakemake.output.h5,
        snakemake.output.table,  # noqa: F821
        job.seed,
        job.attrs,
    )
