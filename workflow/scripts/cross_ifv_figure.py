"""Rule cross_ifv_figure: feature-to-feature similarity matrix of a cross-network inversion."""

from featflow import smk
from featflow.ifv.stage import cross_ifv_figure

smk.run(snakemake, cross_ifv_figure)  # noqa: F821 (injected by Snakemake)
