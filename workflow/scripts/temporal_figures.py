"""Rule temporal_figures: temporal decoding and sedimentation figures with their headline numbers."""

from featflow import smk
from featflow.temporal.stage import temporal_figures

smk.run(snakemake, temporal_figures)  # noqa: F821 (injected by Snakemake)
