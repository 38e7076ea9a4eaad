"""Rule idcor_table: the per-pair IdCor rows of an experiment in one table, in the config's pair order."""

import pandas as pd

from featflow import smk, store

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    rows = [pd.read_csv(path) for path in snakemake.input]  # noqa: F821
    store.write_table(pd.concat(rows, ignore_index=True), snakemake.output[0])  # noqa: F821
