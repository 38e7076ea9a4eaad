"""Rule theory_figure_accuracy: test accuracy vs steps of every model on both families, and the final table."""

from featflow import smk
from featflow.theory.run import accuracy_outputs

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    accuracy_outputs(
        list(snakemake.input.networks),
        list(snakemake.input.baselines),  # noqa: F821
        snakemake.params.families,
        snakemake.output.figure,
        snakemake.output.table,
    )  # noqa: F821
