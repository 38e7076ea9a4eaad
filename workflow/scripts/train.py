"""Rule train: train a model (or load local weights) and write its checkpoint."""

from featflow import smk
from featflow.config import ModelSpec
from featflow.models.train import train_model

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    train_model(
        ModelSpec.from_dict(job.spec),
        snakemake.input.data,
        snakemake.output[0],
        job.device,  # noqa: F821
        job.attrs,
        job.threads,
    )
