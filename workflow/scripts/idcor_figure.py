"""Rule idcor_figure: IdCor of each layer pair with its plain and within-class p-values."""

from featflow import smk
from featflow.frequency.stage import idcor_figure

smk.run(snakemake, idcor_figure)  # noqa: F821 (injected by Snakemake)
