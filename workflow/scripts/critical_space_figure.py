"""Rule critical_space_figure: dim C over rho and the complements' angles to the paper's trivial solutions."""

from featflow import smk
from featflow.ifv.stage import run_critical_space_figure

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    run_critical_space_figure(
        snakemake.input[0],  # noqa: F821
        tuple(snakemake.params.excluded),  # noqa: F821
        snakemake.output.critical_space,  # noqa: F821
    )
