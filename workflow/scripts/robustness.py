"""Rule robustness: sensitivity of every feature to Gaussian input noise."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    pool_mode = job.spec["experiment"]["activations"]["pool"]
    pipeline.compute_robustness(
        snakemake.input.checkpoint,
        snakemake.input.data,  # noqa: F821
        snakemake.input.dictionary,
        spec,
        pool_mode,
        snakemake.output[0],  # noqa: F821
        job.device,
        job.attrs,
        job.seed,
    )
