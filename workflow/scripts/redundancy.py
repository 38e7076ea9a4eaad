"""Rule redundancy: CKA redundancy of every feature under random neuron keep-masks."""

from featflow import smk
from featflow.complexity.stage import redundancy

smk.run(snakemake, redundancy)  # noqa: F821 (injected by Snakemake)
