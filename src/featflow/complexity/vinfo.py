"""Stage ``complexity``: I_V of every feature and planted factor from every layer, and the complexity K.

``vinfo.h5`` [complexity-vinfo] I_V (L, k) and K (k,), ``factors.csv`` the same for the planted factors; with a
second-seed dictionary, K's and the atoms' agreement across dictionary seeds (:func:`seed_stability`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.complexity.codes import KIND as CODES_KIND
from featflow.complexity.spec import ComplexitySpec
from featflow.data import load_split
from featflow.dictionary import files
from featflow.metrics import vinfo

log = logging.getLogger(__name__)

Path_ = str | Path

Chunk = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def _vinfo_rows(
    acts_path: Path_, codes_path: Path_, data_path: Path_, spec: ComplexitySpec, names: list[str]
) -> Iterator[Chunk]:
    """Row chunks of the named layers (``input``: the samples' pooled images) and of the codes, indices and planted
    factors (where the file has them), every row in order."""
    stored = store.shapes(acts_path, "activations")
    layers = [name for name in names if name != "input"]
    extra = [item for item in ("indices", "factors") if item in stored]
    sources = [(acts_path, "activations", f"layers/{name}") for name in layers]
    sources += [(acts_path, "activations", item) for item in extra] + [(codes_path, CODES_KIND, "codes")]
    for _, arrays in store.iter_rows(sources):
        chunk = dict(zip(layers, arrays, strict=False))
        others = dict(zip([*extra, "codes"], arrays[len(layers) :], strict=True))
        if "input" in names:
            images = load_split(data_path, spec.split, rows=others["indices"]).x
            chunk["input"] = vinfo.pooled_input(images, spec.vinfo.input_grid)
        yield chunk, others


def vinfo_layers(
    acts: dict[str, Any], layer_names: list[str], data_path: Path_, split: str, spec: ComplexitySpec
) -> dict[str, np.ndarray]:
    """The V-information predictors of an activations file held in memory (``acts``, as read by
    ``store.read_h5``): the pooled input images first when ``vinfo.include_input``, then the named layers. For
    a checkpoint's small sediment dictionary; :func:`compute_vinfo` streams the same predictors instead."""
    layers: dict[str, np.ndarray] = {}
    if spec.vinfo.include_input:
        images = load_split(data_path, split, rows=acts["indices"]).x
        layers["input"] = vinfo.pooled_input(images, spec.vinfo.input_grid)
    layers.update({name: acts["layers"][name] for name in layer_names})
    return layers


def seed_stability(atoms: np.ndarray, atoms2: np.ndarray, k_feat: np.ndarray, k_feat2: np.ndarray) -> dict[str, float]:
    """Agreement of K across two dictionary seeds: atoms matched one-to-one by cosine (Hungarian assignment), then
    Spearman's rho of K over the matched pairs, and the median matched cosine (how far the atoms agree)."""
    from scipy.stats import spearmanr

    from featflow.temporal.emergence import match

    rows, cols, cos = match(atoms, atoms2)
    ok = np.isfinite(k_feat[rows]) & np.isfinite(k_feat2[cols])
    rho = float(spearmanr(k_feat[rows][ok], k_feat2[cols][ok]).statistic) if ok.sum() > 2 else float("nan")
    return {"k_seed_spearman": rho, "atom_match_cosine_median": float(np.median(cos))}


def compute_vinfo(
    spec: ComplexitySpec,
    *,
    codes: Path_,
    activations: Path_,
    data: Path_,
    dictionary: Path_,
    out: Path_,
    factors_csv: Path_,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """I_V of every feature from every layer, complexity K, and the same for the data set's planted factors.

    Identical layers are merged (counted once, with a warning). The dictionary layer itself is one of the
    layers: its I_V is below 1 where a code is a non-linear (non-negative, sparse) function of the activations
    it is computed from; the number of such features (I_V < 0.8) is recorded. With a second-seed dictionary,
    K's agreement across NMF seeds is recorded too (:func:`seed_stability`). One read of the files: the
    identical layers are found in the same pass as the moments (an identical layer's moments are then dropped).
    """
    codes_path, acts_path, data_path, dict_path = codes, activations, data, dictionary
    acts_attrs = store.read_attrs(acts_path, "activations")
    names = (["input"] if spec.vinfo.include_input else []) + list(acts_attrs["layers"])
    dict_layer = store.read_attrs(dict_path, files.KIND)["layer"]
    dic = store.read_items(dict_path, files.KIND, ["atoms", "atoms_seed2"])
    second = files.read(dict_path, spec.dictionary, which=files.SECOND) if files.has_second(dict_path) else None

    def targets(chunk: dict[str, np.ndarray], others: dict[str, np.ndarray]) -> np.ndarray:
        """Codes, second-seed codes and planted factors side by side: one ridge solve per layer serves them all."""
        parts = [others["codes"]]
        if second is not None:
            parts.append(second.encode(torch.from_numpy(chunk[dict_layer]).float()).numpy())
        if "factors" in others:
            parts.append(others["factors"])
        return np.concatenate(parts, 1)  # float32 codes stay float32 (CoMoments casts per chunk)

    match = vinfo.LayerMatch(names)

    def chunks() -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
        for chunk, others in _vinfo_rows(acts_path, codes_path, data_path, spec, names):
            xs = [chunk[name] for name in names]
            match.update(xs)
            yield xs, targets(chunk, others)

    v = spec.vinfo
    n = store.shapes(codes_path, CODES_KIND)["codes"][0]
    every = vinfo.v_information_chunks(chunks(), n, v.test_fraction, seed, v.ridge_scale)
    merged = match.merged()
    layers = [name for name in names if name not in merged]
    every = every[[names.index(name) for name in layers]]
    dict_layer = merged.get(dict_layer, dict_layer)
    k = dic["atoms"].shape[0]
    iv, f_iv = every[:, :k], every[:, (2 if second else 1) * k :]
    k_feat = vinfo.complexity(iv)
    extra: dict[str, Any] = {
        "merged_layers": [f"{a}={b}" for a, b in merged.items()],
        "dictionary_layer": dict_layer,
        "dictionary_layer_unreadable": int((iv[layers.index(dict_layer)] < 0.8).sum()),
    }
    if second is not None:
        k2 = vinfo.complexity(every[:, k : 2 * k])
        extra.update(seed_stability(dic["atoms"], dic["atoms_seed2"], k_feat, k2))
        log.info(
            "K across two dictionary seeds: Spearman %.3f over matched atoms (median matched cosine %.3f)",
            extra["k_seed_spearman"],
            extra["atom_match_cosine_median"],
        )
    rows = []
    if f_iv.shape[1]:
        factor_names = list(acts_attrs["factor_names"])
        f_k = vinfo.complexity(f_iv)
        for j, name in enumerate(factor_names):
            rows.append(
                {"factor": name, "complexity": f_k[j], **{f"iv_{layer}": f_iv[i, j] for i, layer in enumerate(layers)}}
            )
            log.info("factor %-12s K = %.4f  I_V per layer %s", name, f_k[j], np.round(f_iv[:, j], 4).tolist())
    table = pd.DataFrame(rows, columns=["factor", "complexity", *[f"iv_{layer}" for layer in layers]])
    store.write_table(table, factors_csv, Path(factors_csv).with_suffix(".parquet"))
    summary = {
        "K median": round(float(np.nanmedian(k_feat)), 4),
        "K range": (round(float(np.nanmin(k_feat)), 4), round(float(np.nanmax(k_feat)), 4)),
        "constant features": int(np.isnan(k_feat).sum()),
        f"poorly readable from {dict_layer}": extra["dictionary_layer_unreadable"],
    }
    log.info("features: %s", summary)
    store.write_h5(
        out, "complexity-vinfo", {"iv": iv, "complexity": k_feat}, {**attrs, "layers": list(layers), **extra}
    )
