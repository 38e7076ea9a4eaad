"""Rule cross_ifv: invert one experiment's realizations with another model (cross-network matching)."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.ifv.cross import run_cross

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_cross(
        FVSpec.from_dict(job.spec),
        snakemake.wildcards.other,
        snakemake.input.checkpoint,  # noqa: F821
        snakemake.input.realizations,
        snakemake.output[0],
        job.device,
        job.attrs,
    )  # noqa: F821
