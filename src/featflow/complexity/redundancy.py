"""Stage ``redundancy``: every feature's redundancy under random neuron keep-masks of the dictionary layer and its
participation ratio over the layer's neurons (:mod:`featflow.metrics.cka` says what each measures)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from featflow import store
from featflow.complexity.codes import KIND as CODES_KIND
from featflow.complexity.spec import ComplexitySpec
from featflow.metrics import cka
from featflow.metrics.moments import CoMoments

log = logging.getLogger(__name__)

Path_ = str | Path


def compute_redundancy(
    spec: ComplexitySpec, *, codes: Path_, activations: Path_, layer: str, out: Path_, seed: int, attrs: dict[str, Any]
) -> None:
    """Redundancy of every feature under random neuron keep-masks of the dictionary layer, per drop fraction and
    mask seed (``redundancy_seeds`` (P, S, k); ``redundancy`` (P, k) is their mean), and every feature's
    participation ratio over the layer's neurons (:mod:`featflow.metrics.cka` says what each measures)."""
    sources = [(activations, "activations", f"layers/{layer}"), (codes, CODES_KIND, "codes")]
    moments = CoMoments(*(store.shapes(path, kind)[name][1] for path, kind, name in sources))
    for _, (x, z) in store.iter_rows(sources):
        moments.update(x, z)
    r = spec.redundancy
    per_seed = np.array(
        [
            [cka.masked_redundancy(moments, p, r.masks, np.random.default_rng([seed, s])) for s in range(r.mask_seeds)]
            for p in r.drop
        ]
    )
    red = per_seed.mean(1)
    spread = np.nanmedian(per_seed.std(1), 1) / np.nanstd(red, 1)
    log.info("redundancy median per drop %s: %s", list(r.drop), np.nanmedian(red, 1).round(4))
    log.info("per-feature sd over %d mask seeds / sd over features, per drop: %s", r.mask_seeds, spread.round(3))
    data = {
        "redundancy": red,
        "redundancy_seeds": per_seed,
        "drop": np.asarray(r.drop),
        "participation": cka.participation(moments.xz),
    }
    store.write_h5(out, "complexity-redundancy", data, {**attrs, "masks": r.masks, "mask_seeds": r.mask_seeds})
