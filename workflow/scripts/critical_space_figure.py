"""Rule critical_space_figure: dim C over rho and the complements' angles to the paper's trivial solutions."""

from featflow import smk
from featflow.plots.fv import plot_critical_space

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    plot_critical_space(
        snakemake.input[0],  # noqa: F821
        tuple(snakemake.params.excluded),  # noqa: F821
        snakemake.output.critical_space,  # noqa: F821
    )
