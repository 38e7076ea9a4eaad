"""Rule sediment: a dictionary of one checkpoint (the complexity branch's NMF), its codes' I_V and K."""

from featflow import smk
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec
from featflow.temporal import stage
from featflow.temporal.spec import TemporalSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = ComplexitySpec.from_dict(job.spec["complexity"])
    i = snakemake.input  # noqa: F821
    stage.sediment_epoch(
        i.train,
        i.test,
        i.data,
        spec,
        TemporalSpec.from_dict(job.spec["temporal"]),
        pipeline.dictionary_layer(spec, list(job.spec["experiment"]["layers"])),
        int(snakemake.wildcards.epoch),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        job.device,
        job.attrs,
        job.seed,
    )
