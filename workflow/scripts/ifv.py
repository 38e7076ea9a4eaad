"""Rule ifv: closed-form predicted objectives and their angular distance to the targets."""

from featflow import smk
from featflow.ifv.stage import ifv

smk.run(snakemake, ifv)  # noqa: F821 (injected by Snakemake)
