"""Rule critical_space_figure: dim C over rho and the complements' angles to the paper's trivial solutions."""

from featflow import smk
from featflow.ifv.stage import critical_space_figure

smk.run(snakemake, critical_space_figure)  # noqa: F821 (injected by Snakemake)
