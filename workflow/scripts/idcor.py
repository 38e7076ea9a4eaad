"""Rule idcor: IdCor between one pair of layers of an experiment's activations (SPEC 3.3)."""

from featflow import smk
from featflow.frequency.stage import idcor

smk.run(snakemake, idcor)  # noqa: F821 (injected by Snakemake)
