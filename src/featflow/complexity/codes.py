"""Stages ``codes`` and ``codes_shard``: the codes of one split with the dictionary fixed, any method.

``codes_{split}.h5`` [complexity-codes]: the (n, k) codes, how an iterative encoder met its tolerance, the relative
error ``||A - dec(Z)|| / ||A||``, the classifier's accuracy on the activations and on their reconstructions (the
logits as a function of the dictionary layer: :func:`featflow.models.readout`), and the sums they come from (kept,
so that shards merge exactly). Encoded and written chunk by chunk: memory does not grow with the samples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from featflow import store
from featflow.activations import shard_range
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import files
from featflow.dictionary.base import Dictionary
from featflow.metrics.nnls import CodesReport
from featflow.models import check_readout, load_checkpoint, readout

log = logging.getLogger(__name__)

Path_ = str | Path
KIND = "complexity-codes"
SUMS = ("sq_err", "sq_norm", "hits", "hits_reconstructed", "samples")


def layer_readout(model: Any, acts_path: Path_, layer: str) -> torch.nn.Module:
    """The logits as a function of ``layer`` (:func:`featflow.models.readout`), checked against the logits stored
    with the first rows of the activations file."""
    head = readout(model, layer)
    with store.h5_reader(acts_path, "activations") as handle:
        acts, logits = handle[f"layers/{layer}"][:64], handle["logits"][:64]
    check_readout(head, torch.from_numpy(acts), torch.from_numpy(logits).float(), layer)
    return head


def _correct(head: torch.nn.Module, acts: torch.Tensor, labels: np.ndarray) -> int:
    """How many samples the readout classifies right from (reconstructed) activations of the dictionary layer."""
    with torch.no_grad():
        logits = head(acts.float())
    return int((logits.argmax(1).cpu().numpy() == labels).sum())


def codes_facts(sums: dict[str, float], report: CodesReport | None, layer: str) -> dict[str, Any]:
    """The attributes of a codes file from its sums and the encoder's report (none for a closed-form encoder)."""
    return {
        **(report.attrs() if report is not None else {}),
        "layer": layer,
        "relative_error": math.sqrt(sums["sq_err"]) / max(math.sqrt(sums["sq_norm"]), 1e-12),
        "accuracy": sums["hits"] / sums["samples"],
        "accuracy_reconstructed": sums["hits_reconstructed"] / sums["samples"],
        "codes_sums": sums,
    }


def _encode_chunk(
    handle: h5py.File,
    x: np.ndarray,
    labels: np.ndarray,
    dictionary: Dictionary,
    head: torch.nn.Module,
    sums: dict[str, float],
) -> CodesReport | None:
    """Encode one chunk of activations ``x`` into ``handle["codes"]``, adding its error and hits to ``sums``. A
    function of its own so that the chunk's tensors are freed before the next chunk is read (held over, they
    were +10 MiB of peak memory from the second chunk on)."""
    # float32 codes: same residual as float64 at these tolerances (bench/RESULTS.md), 2-3x faster
    a = torch.from_numpy(x).float().to(dictionary.atoms.device)
    codes, report = dictionary.encode_report(a)
    rec = dictionary.decode(codes)
    sums["sq_err"] += float((a - rec).square().sum())
    sums["sq_norm"] += float(a.square().sum())
    sums["hits"] += _correct(head, a, labels)
    sums["hits_reconstructed"] += _correct(head, rec, labels)
    sums["samples"] += len(labels)
    store.append_rows(handle, "codes", codes.cpu().numpy())
    return report


def encode_layer(
    handle: h5py.File,
    *,
    acts_path: Path_,
    layer: str,
    dictionary: Dictionary,
    model: Any,
    device: torch.device,
    rows: slice = slice(None),
) -> dict[str, Any]:
    """Encode ``rows`` of one layer of an activations file chunk by chunk into ``handle["codes"]``; store on
    ``handle`` and return :func:`codes_facts`."""
    head = layer_readout(model, acts_path, layer).to(device)
    dictionary = dictionary.to(device)
    reports: list[CodesReport] = []
    sums = dict.fromkeys(SUMS, 0.0)
    sources = [(acts_path, "activations", f"layers/{layer}"), (acts_path, "activations", "labels")]
    mask = None
    if rows != slice(None):
        mask = np.zeros(store.shapes(acts_path, "activations")["labels"][0], bool)
        mask[rows] = True
    for _, (x, labels) in store.iter_rows(sources, mask):
        if len(labels):
            report = _encode_chunk(handle, x, labels, dictionary, head, sums)
            reports += [report] if report is not None else []
    facts = codes_facts(sums, CodesReport.merged(reports) if reports else None, layer)
    store.set_attrs(handle, facts)
    log.info(
        "codes of %d samples of %s: relative error %.4f, accuracy %.4f -> %.4f with reconstructions",
        sums["samples"],
        layer,
        facts["relative_error"],
        facts["accuracy"],
        facts["accuracy_reconstructed"],
    )
    return facts


def encode_split(
    spec: ComplexitySpec,
    *,
    dictionary: Path_,
    activations: Path_,
    checkpoint: Path_,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    shard: int = 0,
    shards: int = 1,
) -> None:
    """Codes of one split's activations with the dictionary fixed. With ``shards`` > 1, only shard ``shard`` of
    that many contiguous slices of the samples (:func:`merge_codes` joins them into the file one job writes)."""
    layer = store.read_attrs(dictionary, files.KIND)["layer"]
    model, _ = load_checkpoint(checkpoint, device)
    n = store.shapes(activations, "activations")["labels"][0]
    rows = slice(*shard_range(n, shards, shard, "complexity.shards"))
    meta = {**attrs, **({"shard": shard, "shards": shards} if shards > 1 else {})}
    fitted = files.read(dictionary, spec.dictionary, device)
    with store.h5_writer(out, KIND, meta) as handle:
        encode_layer(
            handle, acts_path=activations, layer=layer, dictionary=fitted, model=model, device=device, rows=rows
        )


def merge_codes(shard_paths: Sequence[Path_], *, out: Path_, attrs: dict[str, Any]) -> None:
    """Join the codes of shard files (in shard order) into the file a single job writes: codes streamed in
    order, the attributes recomputed from the shards' sums and reports."""
    metas = [store.read_attrs(path, KIND) for path in shard_paths]
    for number, (path, meta) in enumerate(zip(shard_paths, metas, strict=True)):
        if (meta.get("shard"), meta.get("shards"), meta["layer"]) != (number, len(shard_paths), metas[0]["layer"]):
            raise store.StoreError(
                f"merge_codes: {path} is shard {meta.get('shard')} of {meta.get('shards')} of layer {meta['layer']}; "
                f"expected shard {number} of {len(shard_paths)} of layer {metas[0]['layer']}"
            )
    sums = {key: sum(float(meta["codes_sums"][key]) for meta in metas) for key in SUMS}
    reports = [CodesReport.from_attrs(meta) for meta in metas if "codes_tol" in meta]
    with store.h5_writer(out, KIND, attrs) as handle:
        for path in shard_paths:
            for _, (codes,) in store.iter_rows([(path, KIND, "codes")]):
                store.append_rows(handle, "codes", codes)
        store.set_attrs(handle, codes_facts(sums, CodesReport.merged(reports) if reports else None, metas[0]["layer"]))
    log.info("codes of %d shards merged: %d samples", len(shard_paths), int(sums["samples"]))
