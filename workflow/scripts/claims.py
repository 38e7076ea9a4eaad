"""Rule claims: one verdict per claim of the papers and experiment, over its training seeds (results/claims.csv)."""

from featflow import smk
from featflow.claims.stage import claims

smk.run(snakemake, claims)  # noqa: F821 (injected by Snakemake)
