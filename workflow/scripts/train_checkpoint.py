"""Rule train_checkpoint: the model's training run stopped after {epoch} epochs (same schedule, seed, batches)."""

from featflow import smk
from featflow.models.stage import train_checkpoint

smk.run(snakemake, train_checkpoint)  # noqa: F821 (injected by Snakemake)
