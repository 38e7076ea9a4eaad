"""Rule robustness_shard: the summed noise statistics of one contiguous slice of the robustness images."""

from featflow import smk
from featflow.complexity.stage import robustness_shard

smk.run(snakemake, robustness_shard)  # noqa: F821 (injected by Snakemake)
