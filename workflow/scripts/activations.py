"""Rule activations: pooled activations of the experiment's layers for one split (or the merge of its shards)."""

from featflow import smk
from featflow.models.stage import activations

smk.run(snakemake, activations)  # noqa: F821 (injected by Snakemake)
