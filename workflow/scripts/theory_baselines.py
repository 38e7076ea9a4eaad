"""Rule theory_baselines: random features, the NTK linearization and an RBF SVM on one shi data set."""

from featflow import smk
from featflow.theory.stage import theory_baselines

smk.run(snakemake, theory_baselines)  # noqa: F821 (injected by Snakemake)
