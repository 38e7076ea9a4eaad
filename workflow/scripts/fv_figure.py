"""Rule fv_figure: a grid of FV realizations."""

from featflow import smk
from featflow.plots.fv import plot_realizations

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    plot_realizations(snakemake.input[0], snakemake.output[0])  # noqa: F821
