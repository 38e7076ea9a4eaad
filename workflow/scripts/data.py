"""Rule data: materialize a data set into HDF5."""

from featflow import smk
from featflow.data.stage import data

smk.run(snakemake, data)  # noqa: F821 (injected by Snakemake)
