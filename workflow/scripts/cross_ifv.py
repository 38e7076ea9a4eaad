"""Rule cross_ifv: invert one experiment's realizations with another model (cross-network matching)."""

from featflow import smk
from featflow.ifv.stage import cross_ifv

smk.run(snakemake, cross_ifv)  # noqa: F821 (injected by Snakemake)
