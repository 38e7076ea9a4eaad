"""Rule temporal_figures: temporal decoding and sedimentation figures with their headline numbers."""

from featflow import smk
from featflow.temporal import stage

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i, o = snakemake.input, snakemake.output  # noqa: F821
    stage.figures(i.temporal, i.factors, dict(o.items()))
