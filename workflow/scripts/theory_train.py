"""Rule theory_train: the two-layer network (two aggressive steps, then small steps) on one shi data set."""

from featflow import smk
from featflow.theory.stage import theory_train

smk.run(snakemake, theory_train)  # noqa: F821 (injected by Snakemake)
