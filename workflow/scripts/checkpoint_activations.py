"""Rule checkpoint_activations: pooled activations of the experiment's layers from one training checkpoint."""

from featflow import smk
from featflow.models.stage import checkpoint_activations

smk.run(snakemake, checkpoint_activations)  # noqa: F821 (injected by Snakemake)
