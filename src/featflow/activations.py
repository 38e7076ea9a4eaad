"""Extract pooled activations of named layers, logits, labels and factors into one HDF5 file (SPEC 1.1).

File layout (kind ``activations``): ``layers/<name>`` (N, C_l * g) float32 for each layer in depth order
(attribute ``layers``), ``logits`` (N, classes), ``labels`` (N,), ``indices`` (N,) into the split,
``factors`` (N, F) when the data set has them (attribute ``factor_names``).

Scale-out (SPEC 5.4): with ``activations.shards`` = S > 1 each of S jobs extracts one contiguous slice of the
split (:func:`extract_shard_to_h5`, same layout plus attributes ``shard``/``shards``) and
:func:`merge_shards` streams them into the one file above, identical to a single-job extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from featflow import store
from featflow.config import ActivationsSpec
from featflow.data import load_split, split_size
from featflow.models import capture, load_checkpoint, resolve_layer
from featflow.models.hooks import run_until

log = logging.getLogger(__name__)

KIND = "activations"
_GRID = {"gap": 1, "grid2": 2, "grid4": 4}


def pool(output: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, C, H, W) -> (N, C * g * g) by adaptive average pooling to g x g; vectors pass through flattened."""
    if mode not in _GRID:
        raise ValueError(f"activations.pool '{mode}': expected one of {sorted(_GRID)}")
    if output.ndim == 4:
        return F.adaptive_avg_pool2d(output, _GRID[mode]).flatten(1)
    return output.flatten(1)


@torch.no_grad()
def extract(
    model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str], mode: str, batch_size: int, device: torch.device
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Pooled activations of ``layers`` and the logits for inputs ``x`` (N, ...), batched under no_grad."""
    feats: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    logits: list[np.ndarray] = []
    with capture(model, layers) as outputs:
        for start in tqdm(range(0, x.shape[0], batch_size), desc="activations", unit="batch"):
            out = run_until(model, x[start : start + batch_size].to(device))
            logits.append(out.float().cpu().numpy())
            for name in layers:
                feats[name].append(pool(outputs[name], mode).float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in feats.items()}, np.concatenate(logits)


def shard_range(n: int, shards: int, shard: int) -> tuple[int, int]:
    """``[start, stop)`` of shard ``shard`` of ``shards`` contiguous slices of ``n`` samples (sizes differ by <= 1)."""
    if not 0 <= shard < shards:
        raise ValueError(f"activations shard {shard}: expected 0 <= shard < shards = {shards}")
    if shards > n:
        raise ValueError(
            f"activations.shards = {shards} exceeds the {n} samples of the split; expected at most {n} shards"
        )
    base, extra = divmod(n, shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (shard < extra)


def _extract_arrays(
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    device: torch.device,
    shard: int,
    shards: int,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Arrays of one shard of the split (the whole split when ``shards`` = 1) and the factor names."""
    model, _ = load_checkpoint(checkpoint, device)
    for name in layers:  # fail before any work on a misspelled layer
        resolve_layer(model, name)
    total = split_size(data_path, split)
    n = total if spec.max_samples is None else min(spec.max_samples, total)
    start, stop = shard_range(n, shards, shard)
    data = load_split(data_path, split, slice(start, stop))  # a shard job reads only its own rows
    feats, logits = extract(model, data.x, layers, spec.pool, spec.batch_size, device)
    arrays: dict[str, Any] = {
        "layers": feats,
        "logits": logits,
        "labels": data.y.numpy(),
        "indices": np.arange(start, stop),
    }
    if data.factors is not None:
        arrays["factors"] = data.factors
    return arrays, tuple(data.factor_names)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def extract_to_h5(
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    out_path: str | Path,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Read the model and one data split, extract ``layers`` and write the activations file atomically."""
    arrays, factor_names = _extract_arrays(checkpoint, data_path, split, layers, spec, device, 0, 1)
    feats, acc = arrays["layers"], _accuracy(arrays["logits"], arrays["labels"])
    log.info(
        "%s split: %d samples, layers %s, accuracy %.4f",
        split,
        len(arrays["indices"]),
        {k: v.shape[1] for k, v in feats.items()},
        acc,
    )
    store.write_h5(
        out_path,
        KIND,
        arrays,
        {**attrs, "layers": list(layers), "split": split, "factor_names": list(factor_names), "accuracy": acc},
    )


def extract_shard_to_h5(
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    shard: int,
    out_path: str | Path,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Extract shard ``shard`` of ``spec.shards`` contiguous slices of the split into its own file."""
    arrays, factor_names = _extract_arrays(checkpoint, data_path, split, layers, spec, device, shard, spec.shards)
    log.info(
        "%s split, shard %d/%d: samples [%d, %d)",
        split,
        shard,
        spec.shards,
        arrays["indices"][0],
        arrays["indices"][-1] + 1,
    )
    store.write_h5(
        out_path,
        KIND,
        arrays,
        {
            **attrs,
            "layers": list(layers),
            "split": split,
            "shard": shard,
            "shards": spec.shards,
            "factor_names": list(factor_names),
        },
    )


def merge_shards(shard_paths: Sequence[str | Path], out_path: str | Path, attrs: dict[str, Any]) -> None:
    """Concatenate shard files (in shard order) into one activations file, streaming one shard at a time.

    The shards must come from one extraction: same split and layers, shard numbers 0..S-1, and indices that
    continue each other, so the result is the file a single job would have written.
    """
    if not shard_paths:
        raise ValueError("merge_shards: expected at least one shard file, got none")
    metas = [store.read_attrs(path, KIND) for path in shard_paths]
    first = metas[0]
    for number, (path, meta) in enumerate(zip(shard_paths, metas, strict=False)):
        for key in ("split", "layers", "shards", "factor_names"):
            if meta.get(key) != first.get(key):
                raise ValueError(
                    f"merge_shards: {path} has {key} = {meta.get(key)!r}, "
                    f"expected {first.get(key)!r} as in {shard_paths[0]}"
                )
        if meta.get("shard") != number or meta.get("shards") != len(shard_paths):
            raise ValueError(
                f"merge_shards: {path} is shard {meta.get('shard')} of {meta.get('shards')}, "
                f"expected shard {number} of {len(shard_paths)}"
            )
    with store.h5_reader(shard_paths[0], KIND) as handle:  # names, trailing shapes and dtypes of every array
        names = [f"layers/{name}" for name in first["layers"]] + [k for k in handle if k != "layers"]
        layout = {name: (handle[name].shape[1:], handle[name].dtype) for name in names}
    sizes, correct = [], 0
    for path in shard_paths:  # small arrays only: sizes, index continuity, accuracy
        with store.h5_reader(path, KIND) as handle:
            start = sum(sizes)
            sizes.append(handle["indices"].shape[0])
            if not np.array_equal(handle["indices"][()], np.arange(start, start + sizes[-1])):
                raise ValueError(f"merge_shards: {path} holds indices that do not continue at {start}")
            correct += int((handle["logits"][()].argmax(1) == handle["labels"][()]).sum())
    total = sum(sizes)
    acc = correct / total
    out_attrs = {
        **attrs,
        "layers": first["layers"],
        "split": first["split"],
        "factor_names": first["factor_names"],
        "accuracy": acc,
    }
    with store.h5_writer(out_path, KIND, out_attrs) as out:
        targets = {
            name: store.create_array(out, name, shape=(total, *shape), dtype=dtype)
            for name, (shape, dtype) in layout.items()
        }
        offset = 0
        for path, size in zip(shard_paths, sizes, strict=False):
            with store.h5_reader(path, KIND) as handle:
                for name, target in targets.items():
                    target[offset : offset + size] = handle[name][()]
            offset += size
    log.info("%s split: merged %d shards, %d samples, accuracy %.4f", first["split"], len(shard_paths), total, acc)
