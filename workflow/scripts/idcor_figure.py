"""Rule idcor_figure: IdCor of each layer pair with its plain and within-class p-values."""

import pandas as pd

from featflow import smk, store
from featflow.frequency.idcor import idcor_numbers
from featflow.plots.frequency import idcor_bars

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    table = pd.read_csv(snakemake.input[0])  # noqa: F821
    store.save_figure(idcor_bars(table), snakemake.output.figure, idcor_numbers(table))  # noqa: F821
