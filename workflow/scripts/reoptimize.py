"""Rule reoptimize: SSIM after re-optimizing realizations under target / prediction / response / random."""

from featflow import smk
from featflow.ifv.stage import reoptimize

smk.run(snakemake, reoptimize)  # noqa: F821 (injected by Snakemake)
