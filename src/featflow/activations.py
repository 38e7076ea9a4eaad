"""Extract pooled activations of named layers, logits, labels and factors into one HDF5 file (SPEC 1.1).

File layout (kind ``activations``): ``layers/<name>`` (N, C_l * g) float32 for each layer in depth order
(attribute ``layers``), ``logits`` (N, classes), ``labels`` (N,), ``indices`` (N,) into the split,
``factors`` (N, F) when the data set has them (attribute ``factor_names``).
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
from featflow.data import load_split
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
def extract(model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str], mode: str, batch_size: int,
            device: torch.device) -> tuple[dict[str, np.ndarray], np.ndarray]:
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


def extract_to_h5(checkpoint: str | Path, data_path: str | Path, split: str, layers: Sequence[str],
                  spec: ActivationsSpec, out_path: str | Path, device: torch.device, attrs: dict[str, Any]) -> None:
    """Read the model and one data split, extract ``layers`` and write the activations file atomically."""
    model, _ = load_checkpoint(checkpoint, device)
    for name in layers:  # fail before any work on a misspelled layer
        resolve_layer(model, name)
    data = load_split(data_path, split)
    n = data.x.shape[0] if spec.max_samples is None else min(spec.max_samples, data.x.shape[0])
    indices = np.arange(n)
    feats, logits = extract(model, data.x[:n], layers, spec.pool, spec.batch_size, device)
    arrays: dict[str, Any] = {"layers": feats, "logits": logits, "labels": data.y[:n].numpy(), "indices": indices}
    if data.factors is not None:
        arrays["factors"] = data.factors[:n]
    acc = float((logits.argmax(1) == arrays["labels"]).mean())
    log.info("%s split: %d samples, layers %s, accuracy %.4f", split, n,
             {k: v.shape[1] for k, v in feats.items()}, acc)
    store.write_h5(out_path, KIND, arrays, {**attrs, "layers": list(layers), "split": split,
                                           "factor_names": list(data.factor_names), "accuracy": acc})
