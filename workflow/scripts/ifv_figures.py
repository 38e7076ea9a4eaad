"""Rule ifv_figures: angular-distance histograms and the alpha_j stacked bar."""

from featflow import smk
from featflow.plots.fv import plot_ifv

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    plot_ifv(snakemake.input[0], snakemake.output.angular, snakemake.output.alpha)  # noqa: F821
