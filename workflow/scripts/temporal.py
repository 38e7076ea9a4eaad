"""Rule temporal: curves over training, emergence epochs, rho(K, emergence), matched K (sedimentation)."""

from featflow import smk
from featflow.temporal import stage
from featflow.temporal.spec import TemporalSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i, o = snakemake.input, snakemake.output  # noqa: F821
    stage.summarize(
        list(i.decoding),
        list(i.sediment),
        i.vinfo,
        i.dictionary,
        i.codes,
        i.factors,
        TemporalSpec.from_dict(job.spec["temporal"]),
        o.h5,
        o.csv,
        o.parquet,
        o.factors,
        job.attrs,
    )
