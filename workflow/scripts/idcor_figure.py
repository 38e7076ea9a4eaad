"""Rule idcor_figure: IdCor of each layer pair with its p-value."""

import pandas as pd

from featflow import smk, store
from featflow.plots.frequency import idcor_bars

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    store.save_figure(idcor_bars(pd.read_csv(snakemake.input[0])), snakemake.output[0])  # noqa: F821
