"""Rule idcor: IdCor between pairs of layers of an experiment's activations (SPEC 3.3)."""

from featflow import smk, store
from featflow.frequency.idcor import layer_idcor
from featflow.frequency.spec import IdCorSpec

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    spec = IdCorSpec.from_dict(job.spec)
    table = layer_idcor(
        snakemake.input[0],
        spec.pairs,
        spec.n_perm,
        spec.max_samples,
        spec.fraction,  # noqa: F821
        job.seed,
        job.device,
    )
    store.write_table(table, snakemake.output[0])  # noqa: F821
