"""Rule critical_space: Algorithm 1 and the nested-interval search over rho."""

from featflow import smk
from featflow.ifv.stage import critical_space

smk.run(snakemake, critical_space)  # noqa: F821 (injected by Snakemake)
