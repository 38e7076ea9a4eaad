"""Rule jacobian: Dy (batched VJPs) and Dy Dy^T of every realization."""

from featflow import smk
from featflow.ifv.stage import jacobian

smk.run(snakemake, jacobian)  # noqa: F821 (injected by Snakemake)
