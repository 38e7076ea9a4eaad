"""Rule theory_alignment: neuron cosines to the effective features, MDS maps, linear probes after steps 1, 2."""

from featflow import smk
from featflow.theory.run import alignment_to_h5

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    alignment_to_h5(
        job.spec,
        snakemake.input.network,
        snakemake.input.data,
        snakemake.output[0],  # noqa: F821
        job.seed,
        job.attrs,
    )
