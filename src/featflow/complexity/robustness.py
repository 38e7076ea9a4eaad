"""Stage ``robustness``: the noise sensitivity of every feature and the model's accuracy under the same noise.

``robustness.h5`` [complexity-robustness]; with ``complexity.shards`` > 1 each shard writes summed statistics
[complexity-robustness-shard] that :func:`merge_robustness` joins (each image's noise depends on its index and the
seed only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.activations import pool, shard_range
from featflow.complexity.spec import ComplexitySpec
from featflow.data import labels_of, load_split, split_size
from featflow.dictionary import files
from featflow.metrics import robustness
from featflow.models import forward_to, load_checkpoint

log = logging.getLogger(__name__)

Path_ = str | Path

ROBUST_KIND = "complexity-robustness"
ROBUST_SHARD_KIND = "complexity-robustness-shard"


def _robustness_parts(
    spec: ComplexitySpec,
    *,
    checkpoint: Path_,
    data_path: Path_,
    dict_path: Path_,
    pool_mode: str,
    device: torch.device,
    seed: int,
    rows: slice,
) -> dict[str, np.ndarray]:
    """The summed statistics of the robustness of ``rows`` of the evaluated images (they merge across shards):
    :class:`~featflow.metrics.robustness.SensitivityParts`, correct predictions under each noise level and clean,
    images per class; and the rows themselves (``indices`` into the split, concatenated by the merge)."""
    model, _ = load_checkpoint(checkpoint, device)
    layer = store.read_attrs(dict_path, files.KIND)["layer"]
    dic = files.read(dict_path, spec.dictionary, device)
    split = load_split(data_path, spec.split, rows=rows)
    images, labels = split.x.to(device), split.y.to(device)
    r = spec.robustness
    scale = model.std if r.units == "normalized" else torch.ones_like(model.std)
    shift = model.mean if r.units == "normalized" else torch.zeros_like(model.mean)

    def to_image(x: torch.Tensor) -> torch.Tensor:  # the noise lives in the chosen units
        return x * scale + shift

    def encode(x: torch.Tensor) -> torch.Tensor:
        return dic.encode(pool(forward_to(model, to_image(x), layer), pool_mode))

    def classify(x: torch.Tensor) -> torch.Tensor:
        return model(to_image(x))

    base = (images - shift) / scale
    noise = robustness.Noise(seed, rows.start)
    parts = robustness.sensitivity_parts(base, encode, r.sigmas, r.draws, noise)
    with torch.no_grad():
        logits = classify(base)
        correct = robustness.noisy_correct(base, labels, classify, r.sigmas, r.draws, noise)
    return {
        "n": np.asarray(parts.n),
        "mean": parts.mean,
        "m2": parts.m2,
        "noisy_var": parts.noisy_var,
        "noisy_correct": correct,
        "clean_correct": np.asarray(int((logits.argmax(1) == labels).sum())),
        "label_counts": np.bincount(labels.cpu().numpy(), minlength=logits.shape[1]),
        "indices": np.arange(rows.start, rows.stop, dtype=np.int64),
    }


def _write_robustness(parts: dict[str, np.ndarray], spec: ComplexitySpec, out: Path_, attrs: dict[str, Any]) -> None:
    """The robustness file from the summed statistics: sensitivities, accuracy under noise, chance flags (against
    the label distribution of the evaluated images, stored with their ``indices`` into the split)."""
    r = spec.robustness
    n = int(parts["n"])
    sens = robustness.SensitivityParts(n, parts["mean"], parts["m2"], parts["noisy_var"]).sensitivity()
    acc = parts["noisy_correct"] / (n * r.draws)
    robustness.check_classes(parts["label_counts"], "complexity.robustness.images")
    flagged = robustness.at_chance(acc, parts["label_counts"], r.chance_alpha)
    chance = float(np.max(parts["label_counts"])) / n
    for sigma, a, bad in zip(r.sigmas, acc, flagged, strict=True):
        if bad:
            log.warning(
                "robustness: accuracy %.3f under sigma %g (%s units) is at chance (%.3f, the most frequent label's "
                "share of the %d images): sensitivities there are left out of the correlations",
                a,
                sigma,
                r.units,
                chance,
                n,
            )
    log.info("sensitivity median per sigma %s over %d images: %s", list(r.sigmas), n, np.nanmedian(sens, 1).round(4))
    log.info("accuracy under noise per sigma %s: %s", list(r.sigmas), np.round(acc, 3))
    store.write_h5(
        out,
        ROBUST_KIND,
        {
            "sensitivity": sens,
            "sigmas": np.asarray(r.sigmas),
            "accuracy": acc,
            "at_chance": np.asarray(flagged),
            "indices": np.asarray(parts["indices"], np.int64),
            "label_counts": np.asarray(parts["label_counts"], np.int64),
        },
        {**attrs, "units": r.units, "clean_accuracy": float(parts["clean_correct"]) / n, "chance": chance},
    )


def compute_robustness(
    spec: ComplexitySpec,
    *,
    checkpoint: Path_,
    data: Path_,
    dictionary: Path_,
    pool_mode: str,
    out: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
    shard: int = 0,
    shards: int = 1,
) -> None:
    """Noise sensitivity of every feature and the model's accuracy under the same noise, at every sigma, on the
    first ``robustness.images`` images of the split (a random sample of it: data sets are stored in a seeded
    order, folder ones stratified by class; their rows are stored as ``indices``); sigmas at which the accuracy
    is not above the most frequent label's share among them are flagged (left out of the correlations
    downstream), and images of fewer than two classes are refused before any work.

    ``units: normalized`` adds the noise to the network's normalized input (pixel std = sigma * the model's
    per-channel std), ``pixel`` to the [0, 1] image. With ``shards`` > 1 only shard ``shard`` of that many
    contiguous slices of the images, written as summed statistics (:func:`merge_robustness` joins them into the
    file one job writes: each image's noise depends on its index and the seed only).
    """
    n = min(spec.robustness.images, split_size(data, spec.split))
    robustness.check_classes(np.bincount(labels_of(data, spec.split, slice(0, n))), "complexity.robustness.images")
    rows = slice(*shard_range(n, shards, shard, "complexity.shards"))
    parts = _robustness_parts(
        spec,
        checkpoint=checkpoint,
        data_path=data,
        dict_path=dictionary,
        pool_mode=pool_mode,
        device=device,
        seed=seed,
        rows=rows,
    )
    if shards == 1:
        _write_robustness(parts, spec, out, attrs)
    else:
        store.write_h5(out, ROBUST_SHARD_KIND, parts, {**attrs, "shard": shard, "shards": shards})


def merge_robustness(spec: ComplexitySpec, shard_paths: Sequence[Path_], *, out: Path_, attrs: dict[str, Any]) -> None:
    """Join the summed statistics of shard files (in shard order) into the robustness file one job writes."""
    total: dict[str, np.ndarray] | None = None
    for number, path in enumerate(shard_paths):
        meta = store.read_attrs(path, ROBUST_SHARD_KIND)
        if (meta.get("shard"), meta.get("shards")) != (number, len(shard_paths)):
            raise store.StoreError(
                f"merge_robustness: {path} is shard {meta.get('shard')} of {meta.get('shards')}; expected shard "
                f"{number} of {len(shard_paths)}"
            )
        part = store.read_h5(path, ROBUST_SHARD_KIND)
        if total is None:
            total = part
            continue
        a = robustness.SensitivityParts(int(total["n"]), total["mean"], total["m2"], total["noisy_var"])
        b = robustness.SensitivityParts(int(part["n"]), part["mean"], part["m2"], part["noisy_var"])
        both = a.merge(b)
        total = {
            "n": np.asarray(both.n),
            "mean": both.mean,
            "m2": both.m2,
            "noisy_var": both.noisy_var,
            **{key: total[key] + part[key] for key in ("noisy_correct", "clean_correct", "label_counts")},
            "indices": np.concatenate([total["indices"], part["indices"]]),
        }
    if total is None:
        raise store.StoreError("merge_robustness: expected at least one shard file, got none")
    _write_robustness(total, spec, out, attrs)
