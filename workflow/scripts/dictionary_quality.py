"""Rule dictionary_quality: R^2, mean L0, dead features, accuracy recovered and seed stability of the dictionary."""

from featflow import smk
from featflow.complexity.stage import dictionary_quality

smk.run(snakemake, dictionary_quality)  # noqa: F821 (injected by Snakemake)
