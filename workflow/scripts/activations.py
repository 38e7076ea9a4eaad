"""Rule activations: pooled activations of the experiment's layers for one split (or the merge of its shards)."""

from featflow import smk
from featflow.activations import extract_to_h5, merge_shards
from featflow.config import ExperimentSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ExperimentSpec.from_dict(job.spec)
    if spec.activations.shards > 1:
        merge_shards(snakemake.input.shards, snakemake.output[0], job.attrs)  # noqa: F821
    else:
        extract_to_h5(
            snakemake.input.checkpoint,
            snakemake.input.data,
            snakemake.wildcards.split,  # noqa: F821
            spec.layers,
            spec.activations,
            snakemake.output[0],
            job.device,
            job.attrs,
            job.threads,
        )  # noqa: F821
