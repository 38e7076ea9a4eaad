"""Rule codes: non-negative codes of one split with the dictionary fixed (batched NNLS)."""

from featflow import smk
from featflow.complexity.stage import codes

smk.run(snakemake, codes)  # noqa: F821 (injected by Snakemake)
