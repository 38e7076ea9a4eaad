"""Rule data: materialize a data set into HDF5."""

from featflow import smk
from featflow.config import DatasetSpec
from featflow.data import write_dataset

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    write_dataset(DatasetSpec.from_dict(job.spec), snakemake.output[0], job.attrs)  # noqa: F821
