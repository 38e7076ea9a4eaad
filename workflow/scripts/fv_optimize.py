"""Rule fv_optimize: one FV realization per target (batched Adam, then L-BFGS)."""

from featflow import smk
from featflow.fv.stage import fv_optimize

smk.run(snakemake, fv_optimize)  # noqa: F821 (injected by Snakemake)
