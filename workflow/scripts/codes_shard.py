"""Rule codes_shard: codes of one contiguous slice of a split with the dictionary fixed (scale-out)."""

from featflow import smk
from featflow.complexity.stage import codes_shard

smk.run(snakemake, codes_shard)  # noqa: F821 (injected by Snakemake)
