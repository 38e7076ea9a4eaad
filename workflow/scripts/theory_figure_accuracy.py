"""Rule theory_figure_accuracy: test accuracy vs steps of every model on both families, and the final table."""

from featflow import smk
from featflow.theory.stage import theory_figure_accuracy

smk.run(snakemake, theory_figure_accuracy)  # noqa: F821 (injected by Snakemake)
