"""Rule redundancy: CKA redundancy of every feature under random neuron keep-masks."""

from featflow import smk, store
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    layer = store.read_attrs(snakemake.input.dictionary, "complexity-dictionary")["layer"]  # noqa: F821
    pipeline.compute_redundancy(
        snakemake.input.codes,
        snakemake.input.activations,
        layer,
        spec,  # noqa: F821
        snakemake.output[0],
        job.attrs,
        job.seed,
    )  # noqa: F821
