"""Rule importance: closed-form gradient x input of every feature."""

from featflow import smk
from featflow.complexity.stage import importance

smk.run(snakemake, importance)  # noqa: F821 (injected by Snakemake)
