"""Rule cross_ifv_figure: feature-to-feature similarity matrix of a cross-network inversion."""

from featflow import smk
from featflow.plots.fv import plot_cross

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    plot_cross(snakemake.input[0], job.spec["model"], snakemake.wildcards.other, snakemake.output[0])  # noqa: F821
