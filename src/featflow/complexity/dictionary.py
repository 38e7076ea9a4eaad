"""Stage ``dictionary``: the experiment's dictionary on its dictionary layer (train split), any registered method.

Writes ``dictionary.h5`` [complexity-dictionary] (:mod:`featflow.dictionary.files`): the atoms, the method's
other arrays, a second seed's dictionary (``second_seed``), the train codes re-encoded by the final dictionary
(so they solve exactly the problem the codes of new inputs solve) with their relative error and the accuracy when
the classifier reads ``z D`` in place of the activations (:mod:`featflow.complexity.codes`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.complexity.codes import encode_layer
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import files
from featflow.dictionary.base import Dictionary, FitContext, Rows
from featflow.dictionary.registry import method
from featflow.dictionary.spec import DictionarySpec
from featflow.models import load_checkpoint

log = logging.getLogger(__name__)

Path_ = str | Path


def dictionary_layer(spec: DictionarySpec, layers: list[str]) -> str:
    """The layer the dictionary is fit on: ``dictionary.layer`` or the experiment's last (penultimate) layer."""
    layer = spec.layer or layers[-1]
    if layer not in layers:
        raise ValueError(
            f"config key 'complexity.dictionary.layer': '{layer}' is not one of the experiment's layers {layers}"
        )
    return layer


def positions(x: np.ndarray) -> np.ndarray:
    """Per-position maps (b, C, H, W) as samples of the C channels: (b * H * W, C), each image's positions in
    row-major order."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, x.shape[1])


@contextmanager
def layer_rows(acts_path: Path_, layer: str, spec: DictionarySpec, device: torch.device) -> Iterator[Rows]:
    """The fit's rows of one layer, read from the open file on demand: the images' pooled vectors or, with
    ``dictionary.positions``, every position of the layer's per-position maps (``spatial/<layer>``)."""
    name = f"spatial/{layer}" if spec.positions else f"layers/{layer}"
    as_rows = positions if spec.positions else np.asarray
    with store.h5_reader(acts_path, "activations") as handle:
        if name not in handle:
            raise store.StoreError(
                f"{acts_path}: no {name}; add '{layer}' to the experiment's activations.spatial and re-extract"
            )
        dset = handle[name]
        per_item = int(np.prod(dset.shape[2:])) if spec.positions else 1
        d = dset.shape[1]
        yield Rows(dset.shape[0], d, lambda rows: as_rows(dset[rows]), device, per_item)


def _check_sign(rows: Rows, spec: DictionarySpec, layer: str) -> None:
    """A method that needs activations >= 0 (NMF) refuses a signed layer before its fit, naming the fixes."""
    if not method(spec.method).nonnegative_input:
        return
    lowest = min(float(batch.min()) for batch in rows.batches(65536))
    if lowest < 0:
        raise ValueError(
            f"complexity.dictionary.method '{spec.method}': activations of '{layer}' must be non-negative (min "
            f"{lowest:.3g}); pick a layer after a ReLU, or method seminmf / topk for a signed layer"
        )


def fit(acts_path: Path_, layer: str, spec: DictionarySpec, device: torch.device, seed: int) -> Dictionary:
    """One dictionary of ``spec.method`` on one layer of an activations file, seeded by ``seed``."""
    with layer_rows(acts_path, layer, spec, device) as rows:
        _check_sign(rows, spec, layer)
        ctx = FitContext(spec.k, torch.Generator(device=device).manual_seed(seed), layer)
        return method(spec.method).fit(rows, spec, ctx)


def fit_dictionary(
    spec: ComplexitySpec,
    *,
    layer: str,
    activations: Path_,
    checkpoint: Path_,
    out: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """Fit the dictionary on one layer of the training activations; write it, a second seed's, and the train codes.

    With ``dictionary.positions`` the atoms are fit on positions and the images encoded by their pooled vectors
    (attributes ``fit_on``, ``fit_samples``); with ``second_seed`` a second dictionary (seed + 1) is stored too
    (the stability of K and of the atoms across seeds)."""
    ds = spec.dictionary
    dictionary = fit(activations, layer, ds, device, seed)
    stored = store.shapes(activations, "activations")
    width = stored[f"layers/{layer}"][1]
    if dictionary.atoms.shape[1] != width:  # positions: C channels; the pooled vectors must match
        raise ValueError(
            f"complexity.dictionary: atoms of {dictionary.atoms.shape[1]} values, but the pooled '{layer}' has {width} "
            "values per image; with positions expected activations.pool: gap"
        )
    fit_rows = stored[f"spatial/{layer}"] if ds.positions else stored[f"layers/{layer}"]
    fit_samples = int(fit_rows[0] * np.prod(fit_rows[2:])) if ds.positions else int(fit_rows[0])
    model, _ = load_checkpoint(checkpoint, device)
    on = "positions" if ds.positions else "images"
    meta = {**attrs, "method": ds.method, "fit_on": on, "fit_samples": fit_samples}
    with store.h5_writer(out, files.KIND, meta) as handle:
        files.write(handle, dictionary)
        if ds.second_seed and method(ds.method).seeded:
            files.write(handle, fit(activations, layer, ds, device, seed + 1), files.SECOND)
        encode_layer(handle, acts_path=activations, layer=layer, dictionary=dictionary, model=model, device=device)
    k = dictionary.atoms.shape[0]
    log.info("%s dictionary on %s (%d %s): %s", ds.method, layer, fit_samples, on, {"k": k, "d": width})
