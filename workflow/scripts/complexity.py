"""Rule complexity: V-information of every feature and planted factor from every layer; complexity K."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    pipeline.compute_vinfo(
        snakemake.input.codes,
        snakemake.input.activations,
        snakemake.input.data,  # noqa: F821
        snakemake.input.dictionary,  # noqa: F821
        spec,
        snakemake.output.vinfo,
        snakemake.output.factors,
        job.attrs,
        job.seed,
    )  # noqa: F821
