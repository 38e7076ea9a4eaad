"""Rule feature_table: one row per feature with every complexity-branch metric (CSV + Parquet)."""

from featflow import smk
from featflow.complexity.stage import feature_table

smk.run(snakemake, feature_table)  # noqa: F821 (injected by Snakemake)
