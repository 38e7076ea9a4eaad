"""Rule feature_flow: I_V and CKA of every feature from each residual block's skip path and main branch."""

from featflow import smk
from featflow.complexity.flow import run_flow
from featflow.complexity.spec import ComplexitySpec
from featflow.config import ActivationsSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i, o = snakemake.input, snakemake.output  # noqa: F821
    run_flow(
        ComplexitySpec.from_dict(job.spec["complexity"]),
        ActivationsSpec.from_dict(job.spec["experiment"]["activations"]),
        i.checkpoint,
        i.codes,
        i.activations,
        i.data,
        i.vinfo,
        i.factors,
        o.h5,
        o.table,
        o.flow,
        job.device,
        job.seed,
        job.attrs,
        job.threads,
    )
