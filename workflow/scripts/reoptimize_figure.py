"""Rule reoptimize_figure: angular distance vs SSIM after re-optimization."""

from featflow import smk
from featflow.plots.fv import plot_reoptimize

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    plot_reoptimize(snakemake.input.ifv, snakemake.input.reoptimize, snakemake.output[0])  # noqa: F821
