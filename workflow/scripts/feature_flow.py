"""Rule feature_flow: I_V and CKA of every feature from each residual block's skip path and main branch."""

from featflow import smk
from featflow.complexity.stage import feature_flow

smk.run(snakemake, feature_flow)  # noqa: F821 (injected by Snakemake)
