"""Rule fourier_mask: data-set and per-image Fourier masks of one model (SPEC 3.1)."""

from featflow import smk
from featflow.frequency.stage import fourier_mask

smk.run(snakemake, fourier_mask)  # noqa: F821 (injected by Snakemake)
