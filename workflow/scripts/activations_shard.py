"""Rule activations_shard: pooled activations of one contiguous slice (shard) of a split."""

from featflow import smk
from featflow.activations import extract_shard_to_h5
from featflow.config import ExperimentSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ExperimentSpec.from_dict(job.spec)
    extract_shard_to_h5(
        snakemake.input.checkpoint,
        snakemake.input.data,
        snakemake.wildcards.split,  # noqa: F821
        spec.layers,
        spec.activations,
        int(snakemake.wildcards.shard),  # noqa: F821
        snakemake.output[0],
        job.device,
        job.attrs,
        job.threads,
    )  # noqa: F821
