"""Synthetic inputs of the complexity stages in the layout they read, written in row chunks (memory flat in N):
an activations file (layers, labels, logits, indices, planted factors), a dictionary file (unit-norm non-negative
atoms, a second seed's, train codes), a data set file of small images and an untrained smallcnn checkpoint whose
penultimate layer ``act`` is the dictionary layer. Used by the unit tests and bench/bench_memory.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from featflow import store
from featflow.config import ModelSpec
from featflow.models import build_model
from featflow.models.checkpoint import save_checkpoint

CLASSES = 10
IMAGE = 8  # side of the (3, IMAGE, IMAGE) inputs


def _atoms(rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    atoms = np.abs(rng.normal(size=(k, d))) ** 3  # peaked non-negative rows
    return (atoms / np.linalg.norm(atoms, axis=1, keepdims=True)).astype(np.float32)


def write_complexity_inputs(
    root: Path, n: int, d: int = 64, n_layers: int = 5, k: int = 128, seed: int = 0, rows: int = 20_000
) -> dict[str, Path]:
    """Write the inputs for ``n`` samples under ``root``; returns their paths (activations, dictionary, data,
    checkpoint). Layers ``layer1..`` and ``act`` are ReLUs of random mixtures of a 16-dim latent, d wide."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    spec = ModelSpec(arch="smallcnn", dataset="synthetic", width=d // 4)
    model = build_model(spec, (3, IMAGE, IMAGE), CLASSES)
    paths = {name: root / f"{name}.h5" for name in ("activations", "dictionary", "data")}
    paths["checkpoint"] = root / "model.pt"
    save_checkpoint(paths["checkpoint"], model, spec, (3, IMAGE, IMAGE), CLASSES, {})
    names = [f"layer{i}" for i in range(1, n_layers)] + ["act"]
    mixing = [rng.normal(size=(16, d)) for _ in names]
    atoms = _atoms(rng, k, d)
    acts_attrs = {"layers": names, "factor_names": ["a", "b"]}
    dict_attrs = {"layer": "act", "method": "nmf"}
    data_attrs = {"classes": [str(c) for c in range(CLASSES)], "factor_names": []}
    with (
        store.h5_writer(paths["activations"], "activations", acts_attrs) as acts,
        store.h5_writer(paths["dictionary"], "complexity-dictionary", dict_attrs) as dic,
        store.h5_writer(paths["data"], "dataset", data_attrs) as data,
    ):
        store.create_array(dic, "atoms", atoms)
        store.create_array(dic, "atoms_seed2", _atoms(rng, k, d))
        for start in range(0, n, rows):
            m = min(rows, n - start)
            latent = rng.normal(size=(m, 16))
            for name, w in zip(names, mixing, strict=True):
                layer = np.maximum(latent @ w, 0.0).astype(np.float32)
                store.append_rows(acts, f"layers/{name}", layer)
            labels = rng.integers(0, CLASSES, m)
            store.append_rows(acts, "labels", labels)
            with torch.no_grad():  # the model's logits of its penultimate layer, as an extraction stores them
                logits = model.body.fc(torch.from_numpy(layer)).numpy()
            store.append_rows(acts, "logits", logits)
            store.append_rows(acts, "indices", np.arange(start, start + m))
            store.append_rows(acts, "factors", np.stack([latent[:, 0], latent[:, 1] ** 2], 1))
            store.append_rows(dic, "codes", np.abs(rng.normal(size=(m, k))).astype(np.float32))
            for split in ("train", "test"):
                images = rng.integers(0, 256, size=(m, 3, IMAGE, IMAGE), dtype=np.uint8)
                store.append_rows(data, f"{split}/x", images)
                store.append_rows(data, f"{split}/y", labels)
    return paths
