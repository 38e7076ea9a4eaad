"""Rule critical_space: Algorithm 1 and the nested-interval search over rho."""

from featflow import smk
from featflow.fv.spec import FVSpec
from featflow.ifv.stage import run_critical_space

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_critical_space(FVSpec.from_dict(job.spec), snakemake.input[0], snakemake.output[0], job.attrs)  # noqa: F821
