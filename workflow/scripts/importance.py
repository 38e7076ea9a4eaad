"""Rule importance: closed-form gradient x input of every feature."""

from featflow import smk
from featflow.complexity import pipeline

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i = snakemake.input  # noqa: F821
    pipeline.compute_importance(
        i.checkpoint,
        i.codes,
        i.activations,
        i.dictionary,
        snakemake.output[0],  # noqa: F821
        job.attrs,
    )
