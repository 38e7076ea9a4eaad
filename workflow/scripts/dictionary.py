"""Rule dictionary: overcomplete NMF of the experiment's dictionary layer (train activations)."""

from featflow import smk
from featflow.complexity.stage import dictionary

smk.run(snakemake, dictionary)  # noqa: F821 (injected by Snakemake)
