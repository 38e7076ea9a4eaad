"""Rule complexity_figures: importance scatter, I_V curves, atom UMAP, top-activating images."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    i, o = snakemake.input, snakemake.output  # noqa: F821
    pipeline.figures(
        i.table,
        i.vinfo,
        i.dictionary,
        i.codes,
        i.activations,
        i.data,
        i.robustness,
        i.factors,
        spec,
        dict(o.items()),
        job.seed,
    )
