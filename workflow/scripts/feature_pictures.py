"""Rule feature_pictures: FV of the simplest and most complex atoms' directions, beside their top images."""

from featflow import smk
from featflow.fv.atoms import PicturesSpec, run_pictures

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i, o = snakemake.input, snakemake.output  # noqa: F821
    run_pictures(
        PicturesSpec.from_dict(job.spec["complexity"]["pictures"]),
        job.spec["experiment"]["activations"]["pool"],
        job.spec["complexity"]["split"],
        i.checkpoint,
        i.dictionary,
        i.vinfo,
        i.codes,
        i.activations,
        i.data,
        o.h5,
        o.pictures,
        job.device,
        job.seed,
        job.attrs,
    )
