"""Rule feature_table: one row per feature with every complexity-branch metric (CSV + Parquet)."""

from featflow import smk
from featflow.complexity import pipeline

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    i, o = snakemake.input, snakemake.output  # noqa: F821
    pipeline.feature_table(
        i.dictionary, i.codes, i.vinfo, i.redundancy, i.robustness, i.importance, o.csv, o.parquet, o.html
    )
