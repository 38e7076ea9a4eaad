"""Rule train_checkpoint: the model's training run stopped after {epoch} epochs (same schedule, seed, batches)."""

from featflow import smk
from featflow.config import ModelSpec
from featflow.models.train import train_model

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    train_model(
        ModelSpec.from_dict(job.spec),
        snakemake.input.data,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        job.device,
        job.attrs,
        job.threads,
        epoch=int(snakemake.wildcards.epoch),  # noqa: F821
    )
