"""Rule train: train a model (or load local weights) and write its checkpoint."""

from featflow import smk
from featflow.models.stage import train

smk.run(snakemake, train)  # noqa: F821 (injected by Snakemake)
