"""Rule temporal_decoding: I_V of the final features and planted factors from one checkpoint's layers."""

from featflow import smk
from featflow.complexity.spec import ComplexitySpec
from featflow.temporal import stage

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    stage.decode_epoch(
        snakemake.input.activations,  # noqa: F821
        snakemake.input.codes,  # noqa: F821
        ComplexitySpec.from_dict(job.spec["complexity"]),
        int(snakemake.wildcards.epoch),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        job.attrs,
        job.seed,
    )
