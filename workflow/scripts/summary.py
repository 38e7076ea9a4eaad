"""Rule summary: every report figure's headline numbers in one table, the report's landing page."""

from featflow import smk
from featflow.summary import summary

smk.run(snakemake, summary)  # noqa: F821 (injected by Snakemake)
