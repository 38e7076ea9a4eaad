"""Rule theory_baselines: random features, the NTK linearization and an RBF SVM on one shi data set."""

from featflow import smk
from featflow.theory.run import baselines_to_h5

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    baselines_to_h5(job.spec, snakemake.input.data, snakemake.output[0], job.seed, job.attrs)  # noqa: F821
