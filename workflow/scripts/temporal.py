"""Rule temporal: curves over training, emergence epochs, rho(K, emergence), matched K (sedimentation)."""

from featflow import smk
from featflow.temporal.stage import temporal

smk.run(snakemake, temporal)  # noqa: F821 (injected by Snakemake)
