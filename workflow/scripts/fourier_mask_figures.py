"""Rule fourier_mask_figures: band-energy differences to the reference model, mask gallery, tables."""

from featflow import smk
from featflow.frequency.fourier_masks import write_mask_comparison

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    out = snakemake.output  # noqa: F821
    paths = dict(zip(snakemake.params.models, snakemake.input.masks, strict=True))  # noqa: F821
    write_mask_comparison(paths, out.bands, out.summary, out.radial, out.angular, out.gallery)
