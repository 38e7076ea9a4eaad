"""Rule checkpoint_activations: pooled activations of the experiment's layers from one training checkpoint."""

from featflow import smk
from featflow.activations import extract_to_h5
from featflow.config import ExperimentSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ExperimentSpec.from_dict(job.spec)
    extract_to_h5(
        snakemake.input.checkpoint,  # noqa: F821
        snakemake.input.data,  # noqa: F821
        snakemake.wildcards.split,  # noqa: F821
        spec.layers,
        spec.activations,
        snakemake.output[0],  # noqa: F821
        job.device,
        job.attrs,
        job.threads,
    )
