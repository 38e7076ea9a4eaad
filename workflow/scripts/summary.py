"""Rule summary: every report figure's headline numbers in one table, the report's landing page."""

from featflow import smk
from featflow.summary import write_summary

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    write_summary(list(snakemake.input), snakemake.output.rst, snakemake.output.csv)  # noqa: F821
