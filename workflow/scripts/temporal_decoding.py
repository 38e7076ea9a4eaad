"""Rule temporal_decoding: I_V of the final features and planted factors from one checkpoint's layers."""

from featflow import smk
from featflow.temporal.stage import temporal_decoding

smk.run(snakemake, temporal_decoding)  # noqa: F821 (injected by Snakemake)
