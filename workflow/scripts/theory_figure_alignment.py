"""Rule theory_figure_alignment: MDS maps of the neurons and the effective features, one row per family."""

from featflow import smk
from featflow.theory.run import alignment_outputs

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    alignment_outputs(list(snakemake.input.alignments), snakemake.params.families, snakemake.output[0])  # noqa: F821
