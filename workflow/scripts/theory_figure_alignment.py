"""Rule theory_figure_alignment: MDS maps of the neurons and the effective features, one row per family."""

from featflow import smk
from featflow.theory.stage import theory_figure_alignment

smk.run(snakemake, theory_figure_alignment)  # noqa: F821 (injected by Snakemake)
