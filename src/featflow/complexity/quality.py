"""Stage ``dictionary_quality``: the numbers every dictionary paper reports, one row per experiment.

On the analyzed split: the fraction of variance explained ``R^2 = 1 - ||A - dec(Z)||^2 / ||A - mean(A)||^2``, the
mean L0 of the codes, dead features (never active), the accuracy when the classifier reads the reconstruction
instead of the activation and its ratio to the model's (Fel et al. keep > 99%), and the stability across two
dictionary seeds: atoms matched one-to-one by cosine (Hungarian), the median matched cosine and the share above
0.9. Streamed chunk by chunk: memory does not grow with the samples.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.complexity.codes import KIND as CODES_KIND
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import files
from featflow.temporal.emergence import match

log = logging.getLogger(__name__)

Path_ = str | Path
COLUMNS = (
    "experiment",
    "method",
    "layer",
    "k",
    "d",
    "signed_atoms",
    "r2",
    "relative_error",
    "l0_mean",
    "dead",
    "dead_fraction",
    "accuracy",
    "accuracy_reconstructed",
    "accuracy_recovered",
    "seed_cosine_median",
    "seed_matched_090",
    "code_version",
    "seed",
)


def dictionary_quality(
    spec: ComplexitySpec,
    *,
    experiment: str,
    dictionary: Path_,
    codes: Path_,
    activations: Path_,
    csv: Path_,
    html: Path_,
    attrs: dict[str, Any],
) -> pd.DataFrame:
    """The quality row of one experiment's dictionary, with the code version and seed of the run (provenance)."""
    meta = store.read_attrs(dictionary, files.KIND)
    facts = store.read_attrs(codes, CODES_KIND)
    layer = meta["layer"]
    fitted = files.read(dictionary, spec.dictionary)
    k, d = fitted.atoms.shape
    sq_err, active, l0, n = 0.0, np.zeros(k, bool), 0.0, 0
    shift, shifted_sum, shifted_sq = None, np.zeros(d), 0.0  # the variance about a shift: no cancellation
    sources = [(codes, CODES_KIND, "codes"), (activations, "activations", f"layers/{layer}")]
    for _, (z, a) in store.iter_rows(sources):
        rec = fitted.decode(torch.from_numpy(z).float()).double().numpy()
        sq_err += float(np.square(a - rec).sum())
        shift = a.mean(0, dtype=np.float64) if shift is None else shift
        centered = a - shift
        shifted_sum += centered.sum(0)
        shifted_sq += float(np.square(centered).sum())
        nonzero = z != 0
        active |= nonzero.any(0)
        l0, n = l0 + float(nonzero.sum()), n + len(z)
    total = shifted_sq - float(np.square(shifted_sum).sum()) / max(n, 1)
    atoms = store.read_items(dictionary, files.KIND, ["atoms", "atoms_seed2"])
    seeds = match(atoms["atoms"], atoms["atoms_seed2"])[2] if "atoms_seed2" in atoms else None
    row = {
        "experiment": experiment,
        "method": meta["method"],
        "layer": layer,
        "k": k,
        "d": d,
        "signed_atoms": bool(fitted.signed_atoms),
        "r2": 1.0 - sq_err / max(total, 1e-300),
        "relative_error": float(facts["relative_error"]),
        "l0_mean": l0 / max(n, 1),
        "dead": int((~active).sum()),
        "dead_fraction": float((~active).mean()),
        "accuracy": float(facts["accuracy"]),
        "accuracy_reconstructed": float(facts["accuracy_reconstructed"]),
        "accuracy_recovered": float(facts["accuracy_reconstructed"]) / max(float(facts["accuracy"]), 1e-12),
        "seed_cosine_median": float(np.median(seeds)) if seeds is not None else float("nan"),
        "seed_matched_090": float((seeds > 0.9).mean()) if seeds is not None else float("nan"),
        "code_version": attrs.get("code_version", ""),
        "seed": attrs.get("seed", ""),
    }
    table = pd.DataFrame([row], columns=list(COLUMNS))
    store.write_table(table, csv)
    head = (
        f"<p>Dictionary of {experiment} ({row['method']}, {k} atoms on {layer}, d = {d}) on the analyzed split: "
        f"R<sup>2</sup> {row['r2']:.4f}, mean L0 {row['l0_mean']:.2f}, {row['dead']} dead features, accuracy with the "
        f"reconstruction {row['accuracy_reconstructed']:.4f} of {row['accuracy']:.4f} "
        f"({100 * row['accuracy_recovered']:.2f}% recovered; Fel et al. keep &gt; 99%); two seeds' atoms matched: "
        f"median cosine {row['seed_cosine_median']:.3f}.</p>"
    )
    with store.atomic_path(html) as tmp:
        Path(tmp).write_text(f"<html><body>{head}{table.to_html(index=False, float_format='%.4g')}</body></html>")
    log.info("dictionary quality: %s", {key: row[key] for key in COLUMNS[1:-2]})
    return table
