"""Rule adversarial_maps: essential vs adversarial frequency maps of one model and their IdCor (SPEC 3.2)."""

from featflow import smk
from featflow.frequency.freq_maps import adversarial_frequency_maps
from featflow.frequency.spec import MapsSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    adversarial_frequency_maps(
        snakemake.input.checkpoint,
        snakemake.input.data,  # noqa: F821
        MapsSpec.from_dict(job.spec),
        snakemake.output.maps,  # noqa: F821
        snakemake.output.table,
        job.device,
        job.seed,
        job.attrs,
    )  # noqa: F821
