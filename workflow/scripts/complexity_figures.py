"""Rule complexity_figures: importance scatter, I_V curves, atom UMAP, top-activating images."""

from featflow import smk
from featflow.complexity.stage import complexity_figures

smk.run(snakemake, complexity_figures)  # noqa: F821 (injected by Snakemake)
