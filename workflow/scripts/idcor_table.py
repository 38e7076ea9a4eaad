"""Rule idcor_table: the per-pair IdCor rows of an experiment in one table, in the config's pair order."""

from featflow import smk
from featflow.frequency.stage import idcor_table

smk.run(snakemake, idcor_table)  # noqa: F821 (injected by Snakemake)
