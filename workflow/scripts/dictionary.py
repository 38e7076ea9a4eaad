"""Rule dictionary: overcomplete NMF of the experiment's dictionary layer (train activations)."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    layer = pipeline.dictionary_layer(spec, list(job.spec["experiment"]["layers"]))
    pipeline.fit_dictionary(
        snakemake.input.activations,
        snakemake.input.checkpoint,
        spec,
        layer,  # noqa: F821
        snakemake.output[0],
        job.device,
        job.attrs,
        job.seed,
    )  # noqa: F821
