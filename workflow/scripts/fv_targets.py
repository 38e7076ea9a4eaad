"""Rule fv_targets: Hoyer-sparse non-negative targets plus the canonical vectors."""

from featflow import smk
from featflow.fv.stage import fv_targets

smk.run(snakemake, fv_targets)  # noqa: F821 (injected by Snakemake)
