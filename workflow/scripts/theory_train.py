"""Rule theory_train: the two-layer network (two aggressive steps, then small steps) on one shi data set."""

from featflow import smk
from featflow.theory.run import train_to_h5

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    train_to_h5(job.spec, snakemake.input.data, snakemake.output[0], job.seed, job.attrs)  # noqa: F821
