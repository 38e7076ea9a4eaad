"""Rule fourier_mask: data-set and per-image Fourier masks of one model (SPEC 3.1)."""

from featflow import smk
from featflow.frequency.fourier_masks import fourier_mask_analysis
from featflow.frequency.spec import MasksSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    fourier_mask_analysis(
        snakemake.input.checkpoint,
        snakemake.input.data,  # noqa: F821
        MasksSpec.from_dict(job.spec),
        snakemake.output[0],
        job.device,
        job.seed,  # noqa: F821
        job.attrs,
    )
