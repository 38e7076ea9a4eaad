"""Extract pooled activations of named layers, logits, labels and factors into one HDF5 file (SPEC 1.1).

Extraction streams: batches come from :func:`featflow.data.batches` (folder data sets decoded from the source by
DataLoader workers, with the model's preprocessing) and are appended to chunked, resizable datasets as they
finish, so peak memory does not grow with the number of samples.

File layout (kind ``activations``): ``layers/<name>`` (N, C_l * g) float32 for each layer in depth order
(attribute ``layers``), ``spatial/<name>`` (N, C_l, H_l, W_l) float32 for the layers asked per position
(``activations.spatial``, attribute ``spatial``), ``logits`` (N, classes), ``labels`` (N,), ``indices`` (N,)
into the split, ``factors`` (N, F) when the data set has them (attribute ``factor_names``).

Scale-out (SPEC 5.4): with ``activations.shards`` = S > 1 each of S jobs extracts one contiguous slice of the
split (:func:`extract_shard_to_h5`, same layout plus attributes ``shard``/``shards``) and
:func:`merge_shards` streams them into the one file above, identical to a single-job extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from featflow import store
from featflow.config import ActivationsSpec, ModelSpec
from featflow.data import batches, describe, split_size
from featflow.models import capture, load_checkpoint, resolve_layer
from featflow.models.hooks import run_until
from featflow.models.weights import preprocessing

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


def shard_range(n: int, shards: int, shard: int, key: str = "activations.shards") -> tuple[int, int]:
    """``[start, stop)`` of shard ``shard`` of ``shards`` contiguous slices of ``n`` samples (sizes differ by <= 1);
    ``key`` names the setting in the error for more shards than samples."""
    if not 0 <= shard < shards:
        raise ValueError(f"{key}: shard {shard}, expected 0 <= shard < shards = {shards}")
    if shards > n:
        raise ValueError(f"{key} = {shards} exceeds the {n} samples; expected at most {n} shards")
    base, extra = divmod(n, shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (shard < extra)


def _rows(data_path: str | Path, split: str, spec: ActivationsSpec, shard: int, shards: int) -> slice:
    """The rows of the split that shard ``shard`` of ``shards`` extracts (all of them, up to max_samples, for 1)."""
    total = split_size(data_path, split)
    n = total if spec.max_samples is None else min(spec.max_samples, total)
    return slice(*shard_range(n, shards, shard))


@torch.no_grad()
def _stream_into(
    out: h5py.File,
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    *,
    rows: slice,
    device: torch.device,
    workers: int,
) -> tuple[int, int]:
    """Extract ``rows`` of the split batch by batch into ``out``; returns (samples, correct predictions)."""
    model, payload = load_checkpoint(checkpoint, device)
    for name in layers:  # fail before any work on a misspelled layer
        resolve_layer(model, name)
    outside = [name for name in spec.spatial if name not in layers]
    if outside:
        raise ValueError(f"activations.spatial: {outside} are not among the extracted layers {list(layers)}")
    preprocess = preprocessing(ModelSpec.from_dict(payload["spec"]), describe(data_path)[0][-1])
    stream = batches(data_path, split, spec.batch_size, rows, workers, preprocess)
    total = -(-(rows.stop - rows.start) // spec.batch_size)
    done = correct = 0
    with capture(model, layers) as outputs:
        for batch in tqdm(stream, total=total, desc="activations", unit="batch"):
            logits = run_until(model, batch.x.to(device, non_blocking=True)).float().cpu().numpy()
            labels = batch.y.numpy()
            for name in layers:
                store.append_rows(out, f"layers/{name}", pool(outputs[name], spec.pool).float().cpu().numpy())
            for name in spec.spatial:  # per-position maps too (N, C, H, W)
                if outputs[name].ndim != 4:
                    raise ValueError(
                        f"activations.spatial: layer '{name}' gives shape {tuple(outputs[name].shape[1:])}, not a "
                        "(C, H, W) map; expected convolutional layers only"
                    )
                store.append_rows(out, f"spatial/{name}", outputs[name].float().cpu().numpy())
            store.append_rows(out, "logits", logits)
            store.append_rows(out, "labels", labels)
            store.append_rows(out, "indices", np.arange(rows.start + done, rows.start + done + len(labels)))
            if batch.factors is not None:
                store.append_rows(out, "factors", batch.factors)
            done += len(labels)
            correct += int((logits.argmax(1) == labels).sum())
    return done, correct


def loader_workers(spec: ActivationsSpec, threads: int) -> int:
    """DataLoader worker processes: ``activations.workers``, else the rule's threads."""
    return spec.workers if spec.workers is not None else threads


def extract_to_h5(
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    out_path: str | Path,
    *,
    device: torch.device,
    attrs: dict[str, Any],
    threads: int = 1,
) -> None:
    """Read the model and one data split, extract ``layers`` and write the activations file atomically."""
    _, _, factor_names = describe(data_path)
    meta = {**attrs, "layers": list(layers), "spatial": list(spec.spatial), "split": split}
    meta["factor_names"] = list(factor_names)
    with store.h5_writer(out_path, KIND, meta) as out:
        rows = _rows(data_path, split, spec, 0, 1)
        n, correct = _stream_into(
            out,
            checkpoint,
            data_path,
            split,
            rows=rows,
            layers=layers,
            spec=spec,
            device=device,
            workers=loader_workers(spec, threads),
        )
        out.attrs["accuracy"] = correct / n
        widths = {name: out[f"layers/{name}"].shape[1] for name in layers}
    log.info("%s split: %d samples, layers %s, accuracy %.4f", split, n, widths, correct / n)


def extract_shard_to_h5(
    checkpoint: str | Path,
    data_path: str | Path,
    split: str,
    layers: Sequence[str],
    spec: ActivationsSpec,
    out_path: str | Path,
    *,
    shard: int,
    device: torch.device,
    attrs: dict[str, Any],
    threads: int = 1,
) -> None:
    """Extract shard ``shard`` of ``spec.shards`` contiguous slices of the split into its own file."""
    _, _, factor_names = describe(data_path)
    rows = _rows(data_path, split, spec, shard, spec.shards)
    meta = {
        **attrs,
        "layers": list(layers),
        "spatial": list(spec.spatial),
        "split": split,
        "shard": shard,
        "shards": spec.shards,
        "factor_names": list(factor_names),
    }
    with store.h5_writer(out_path, KIND, meta) as out:
        _, correct = _stream_into(
            out,
            checkpoint,
            data_path,
            split,
            rows=rows,
            layers=layers,
            spec=spec,
            device=device,
            workers=loader_workers(spec, threads),
        )
        out.attrs["correct"] = correct  # the merged file's accuracy, without reading the logits again
    log.info("%s split, shard %d/%d: samples [%d, %d)", split, shard, spec.shards, rows.start, rows.stop)


def merge_shards(
    shard_paths: Sequence[str | Path], out_path: str | Path, attrs: dict[str, Any], block: int = 4096
) -> None:
    """Concatenate shard files (in shard order) into one activations file, streaming ``block`` rows at a time.

    The shards must come from one extraction: same split and layers, shard numbers 0..S-1, and indices that
    continue each other, so the result is the file a single job would have written.
    """
    if not shard_paths:
        raise ValueError("merge_shards: expected at least one shard file, got none")
    metas = [store.read_attrs(path, KIND) for path in shard_paths]
    first = metas[0]
    for number, (path, meta) in enumerate(zip(shard_paths, metas, strict=False)):
        for key in ("split", "layers", "spatial", "shards", "factor_names"):
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
        names = [f"layers/{name}" for name in first["layers"]]
        names += [f"spatial/{name}" for name in first.get("spatial", [])]
        names += [k for k in handle if k not in ("layers", "spatial")]
        layout = {name: (handle[name].shape[1:], handle[name].dtype) for name in names}
    sizes, correct = [], 0
    for path in shard_paths:  # small arrays only: sizes and index continuity
        with store.h5_reader(path, KIND) as handle:
            start = sum(sizes)
            sizes.append(handle["indices"].shape[0])
            if not np.array_equal(handle["indices"][()], np.arange(start, start + sizes[-1])):
                raise ValueError(f"merge_shards: {path} holds indices that do not continue at {start}")
            correct += int(metas[len(sizes) - 1]["correct"])
    total = sum(sizes)
    acc = correct / total
    out_attrs = {
        **attrs,
        "layers": first["layers"],
        "spatial": first.get("spatial", []),
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
                    for lo in range(0, size, block):  # bounded memory, whatever the shard size
                        hi = min(lo + block, size)
                        target[offset + lo : offset + hi] = handle[name][lo:hi]
            offset += size
    log.info("%s split: merged %d shards, %d samples, accuracy %.4f", first["split"], len(shard_paths), total, acc)
