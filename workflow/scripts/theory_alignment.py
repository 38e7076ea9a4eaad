"""Rule theory_alignment: neuron cosines to the effective features, MDS maps, linear probes after steps 1, 2."""

from featflow import smk
from featflow.theory.stage import theory_alignment

smk.run(snakemake, theory_alignment)  # noqa: F821 (injected by Snakemake)
