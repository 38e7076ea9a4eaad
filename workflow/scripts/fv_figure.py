"""Rule fv_figure: a grid of FV realizations."""

from featflow import smk
from featflow.fv.stage import fv_figure

smk.run(snakemake, fv_figure)  # noqa: F821 (injected by Snakemake)
