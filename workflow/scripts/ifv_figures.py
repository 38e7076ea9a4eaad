"""Rule ifv_figures: angular-distance histograms and the alpha_j stacked bar."""

from featflow import smk
from featflow.ifv.stage import ifv_figures

smk.run(snakemake, ifv_figures)  # noqa: F821 (injected by Snakemake)
