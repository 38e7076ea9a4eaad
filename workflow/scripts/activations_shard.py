"""Rule activations_shard: pooled activations of one contiguous slice (shard) of a split."""

from featflow import smk
from featflow.models.stage import activations_shard

smk.run(snakemake, activations_shard)  # noqa: F821 (injected by Snakemake)
