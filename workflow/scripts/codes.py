"""Rule codes: non-negative codes of one split with the dictionary fixed (batched NNLS)."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    pipeline.encode_split(
        snakemake.input.dictionary,
        snakemake.input.activations,  # noqa: F821
        snakemake.input.checkpoint,
        spec,
        snakemake.output[0],
        job.device,
        job.attrs,
    )  # noqa: F821
