"""Rule fourier_mask_figures: band-energy differences to the reference model, mask gallery, tables."""

from featflow import smk
from featflow.frequency.stage import fourier_mask_figures

smk.run(snakemake, fourier_mask_figures)  # noqa: F821 (injected by Snakemake)
