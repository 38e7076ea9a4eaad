"""Rule robustness: sensitivity of every feature to Gaussian input noise."""

from featflow import smk
from featflow.complexity.stage import robustness

smk.run(snakemake, robustness)  # noqa: F821 (injected by Snakemake)
