"""Rule sediment: a dictionary of one checkpoint (the complexity branch's NMF), its codes' I_V and K."""

from featflow import smk
from featflow.temporal.stage import sediment

smk.run(snakemake, sediment)  # noqa: F821 (injected by Snakemake)
