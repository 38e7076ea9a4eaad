"""Rule idcor: IdCor between one pair of layers of an experiment's activations (SPEC 3.3)."""

from featflow import smk, store
from featflow.frequency.idcor import layer_idcor
from featflow.frequency.spec import IdCorSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = IdCorSpec.from_dict(job.spec)
    wc = snakemake.wildcards  # noqa: F821
    table = layer_idcor(
        snakemake.input[0],  # noqa: F821
        [(wc.layer_a, wc.layer_b)],
        spec.n_perm,
        spec.max_samples,
        spec.fraction,
        job.seed,
        job.device,
    )
    store.write_table(table, snakemake.output[0])  # noqa: F821
