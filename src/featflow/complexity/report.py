"""The complexity branch's feature table and figures (rules feature_table, complexity_figures), written from the
branch's files: atoms, codes, I_V, redundancy, robustness and importance. Apart from the torch code that computes
them (the stage modules of :mod:`featflow.complexity`), so that these jobs import no torch
(``tests/unit/test_imports.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featflow import store
from featflow.complexity.spec import ComplexitySpec
from featflow.metrics.stats import Rho, partial_spearman_ci, spearman_ci

Path_ = str | Path


def read_atoms(dict_path: Path_) -> np.ndarray:
    """The (k, d) atoms of a dictionary file, without its (N, k) train codes."""
    return store.read_items(dict_path, "complexity-dictionary", ["atoms"])["atoms"]


def split_images(data_path: Path_, split: str, rows: np.ndarray) -> np.ndarray:
    """Images (float32, uint8 ones scaled to [0, 1]) of ``rows`` of one split, as featflow.data.load_split gives
    them: read straight from the file when it stores the arrays (no torch), decoded by featflow.data (torch)
    for a folder data set."""
    if "source" in store.read_attrs(data_path, "dataset"):
        from featflow.data import load_split

        return load_split(data_path, split, rows=rows).x.numpy()
    (x,) = store.read_rows(data_path, "dataset", [f"{split}/x"], np.asarray(rows))
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def hoyer(atoms: np.ndarray) -> np.ndarray:
    """Hoyer sparsity (sqrt(d) - l1/l2) / (sqrt(d) - 1) of each row, in [0, 1]: (k, d) -> (k,)."""
    d = atoms.shape[1]
    l1, l2 = np.abs(atoms).sum(1), np.linalg.norm(atoms, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.sqrt(d) - l1 / l2) / (np.sqrt(d) - 1)


def table_metadata(vinfo_path: Path_, robustness_path: Path_, dict_path: Path_) -> dict[str, Any]:
    """The run-level facts a reader of the feature table needs: the dictionary method, reconstruction, K's stability
    across dictionary seeds, merged layers, the dictionary layer's readability, accuracy under noise per sigma and its
    flags."""
    vi = store.read_attrs(vinfo_path, "complexity-vinfo")
    rob, rob_attrs = store.read_h5(robustness_path), store.read_attrs(robustness_path)
    dic = store.read_attrs(dict_path, "complexity-dictionary")
    meta = {
        "method": str(dic["method"]),
        "nnls_codes": "codes_tol" in dic,  # an iterative NNLS encoder (nmf, seminmf): its ridge is a fact of the run
        "relative_error": float(dic["relative_error"]),
        "accuracy": float(dic["accuracy"]),
        "accuracy_reconstructed": float(dic["accuracy_reconstructed"]),
        "layers": list(vi["layers"]),
        "merged_layers": list(vi["merged_layers"]),
        "dictionary_layer": str(vi["dictionary_layer"]),
        "dictionary_layer_unreadable": int(vi["dictionary_layer_unreadable"]),
        "noise_units": str(rob_attrs["units"]),
        "clean_accuracy": float(rob_attrs["clean_accuracy"]),
        "noise_accuracy": {f"{s:g}": float(a) for s, a in zip(rob["sigmas"], rob["accuracy"], strict=True)},
        "noise_at_chance": [f"{s:g}" for s, bad in zip(rob["sigmas"], rob["at_chance"], strict=True) if bad],
    }
    for key in ("k_seed_spearman", "atom_match_cosine_median"):
        if key in vi:
            meta[key] = float(vi[key])
    return meta


def redundancy_facts(red: dict[str, np.ndarray], attrs: dict[str, Any], k: np.ndarray) -> dict[str, Any]:
    """Masks per seed, mask seeds and rho(K, redundancy) of each mask seed per drop fraction: the spread of the
    estimate over mask draws, beside the bootstrap over features (each seed uses ``masks``; the table's value,
    their mean, uses all of them)."""
    rhos = {
        f"{p:g}": [spearman_ci(k, r, resamples=2).rho for r in red["redundancy_seeds"][i]]
        for i, p in enumerate(red["drop"])
    }
    return {
        "redundancy_masks": int(attrs["masks"]),
        "redundancy_mask_seeds": int(attrs["mask_seeds"]),
        "redundancy_seed_rho": rhos,
    }


def usage(codes_path: Path_) -> np.ndarray:
    """Fraction of samples on which each feature is active (code above 1e-6 of the largest code): (k,), from two
    passes over the codes."""
    source = [(codes_path, "complexity-codes", "codes")]
    n, k = store.shapes(codes_path, "complexity-codes")["codes"]
    top = max((float(z.max(initial=0.0)) for _, (z,) in store.iter_rows(source)), default=0.0)
    threshold = 1e-6 * max(top, 1e-12)
    return sum(((z > threshold).sum(0) for _, (z,) in store.iter_rows(source)), np.zeros(k)) / n


def feature_table(
    *,
    dict_path: Path_,
    codes_path: Path_,
    vinfo_path: Path_,
    redundancy_path: Path_,
    robustness_path: Path_,
    importance_path: Path_,
    csv: Path_,
    parquet: Path_,
    html: Path_,
) -> pd.DataFrame:
    """One row per feature: complexity, per-layer I_V, redundancy, sensitivity, importance, sparsity, usage.

    The run-level facts (:func:`table_metadata`) go into the Parquet metadata (``DataFrame.attrs``) and the head
    of the HTML view, which the report shows inline.
    """
    atoms = read_atoms(dict_path)
    vi, vi_attrs = store.read_h5(vinfo_path, "complexity-vinfo"), store.read_attrs(vinfo_path, "complexity-vinfo")
    red = store.read_h5(redundancy_path, "complexity-redundancy")
    rob = store.read_h5(robustness_path, "complexity-robustness")
    imp = store.read_h5(importance_path, "complexity-importance")
    cols: dict[str, Any] = {"feature": np.arange(atoms.shape[0]), "complexity": vi["complexity"]}
    cols.update({f"iv_{name}": vi["iv"][i] for i, name in enumerate(vi_attrs["layers"])})
    cols.update({f"redundancy_p{p:g}": red["redundancy"][i] for i, p in enumerate(red["drop"])})
    cols["participation"] = red["participation"]
    cols.update({f"sensitivity_s{s:g}": rob["sensitivity"][i] for i, s in enumerate(rob["sigmas"])})
    cols.update(
        {
            "importance": imp["signed"],
            "importance_abs": imp["absolute"],
            "importance_per_activation": imp["per_activation"],
            "mean_code": imp["mean_code"],
            "hoyer": hoyer(atoms),
            "usage": usage(codes_path),
        }
    )
    table = pd.DataFrame(cols)
    table.attrs = {
        **table_metadata(vinfo_path, robustness_path, dict_path),
        **redundancy_facts(red, store.read_attrs(redundancy_path, "complexity-redundancy"), vi["complexity"]),
    }
    store.write_table(table, csv, parquet)
    facts = "".join(f"<li><b>{key}</b>: {value}</li>" for key, value in table.attrs.items())
    head = f"<h3>Feature table ({len(table)} features)</h3><ul>{facts}</ul>"
    page = f"<html><body>{head}{table.to_html(index=False, float_format='%.4g')}</body></html>"
    with store.atomic_path(html) as tmp:
        Path(tmp).write_text(page)
    return table


def factor_numbers(factors_csv: Path_) -> dict[str, str]:
    """K of the planted factors and whether they rank as designed (SPEC 5.1: color < orientation < parity)."""
    factors = store.read_table(factors_csv)
    if factors.empty:
        return {}
    k = factors.set_index("factor")["complexity"]
    numbers = {f"K({name})": f"{value:.3f}" for name, value in k.items()}
    if {"color", "orientation", "parity"} <= set(k.index):
        ranked = bool(k["color"] < k["orientation"] < k["parity"])
        numbers["planted ranking K(color) < K(orientation) < K(parity)"] = "holds" if ranked else "VIOLATED"
    return numbers


def top_samples(
    codes_path: Path_, acts_path: Path_, data_path: Path_, split: str, n_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and images of only the samples among some feature's ``n_images`` largest codes (one pass over the
    codes keeps every feature's best rows so far): the top-activating images of every feature, without all N."""
    rows, _ = store.top_rows(codes_path, "complexity-codes", "codes", n_images)
    kept = np.unique(rows)
    (codes,) = store.read_rows(codes_path, "complexity-codes", ["codes"], kept)
    (indices,) = store.read_rows(acts_path, "activations", ["indices"], kept)
    return codes, split_images(data_path, split, indices)


def importance_numbers(table: pd.DataFrame, rho: Rho, seed: int) -> dict[str, str]:
    """The importance figure's numbers: rho(K, |importance|) beside rho(K, mean code), the partial rho given the
    mean code (near 0: the relation is carried by code magnitude) and rho(K, per-activation importance)."""
    k, code = table["complexity"].to_numpy(), table["mean_code"].to_numpy()
    importance_abs = table["importance_abs"].to_numpy()
    return {
        "rho(K, |importance|)": f"{rho} (paper: negative)",
        "rho(K, mean code)": str(spearman_ci(k, code, seed=seed)),
        "partial rho(K, |importance| | mean code)": str(partial_spearman_ci(k, importance_abs, code, seed=seed)),
        "rho(K, per-activation importance E[|<d_i, w_c>| | z_i > 0])": str(
            spearman_ci(k, table["importance_per_activation"].to_numpy(), seed=seed)
        ),
    }


def figures(
    *,
    table_path: Path_,
    vinfo_path: Path_,
    dict_path: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    robustness_path: Path_,
    factors_csv: Path_,
    spec: ComplexitySpec,
    outs: dict[str, Path_],
    seed: int,
) -> None:
    """The complexity figures, each with this run's headline numbers (beside the paper's) in its metadata:
    importance scatter, I_V curves, the relations of K to redundancy, sensitivity and signed importance, atom
    map (UMAP, or its spectral initialization below 1000 atoms), top-activating images."""
    from featflow.plots import complexity as plots

    table = store.read_table(table_path)
    meta = table.attrs
    layers = list(store.read_attrs(vinfo_path, "complexity-vinfo")["layers"])
    atoms = read_atoms(dict_path)
    rob = store.read_h5(robustness_path, "complexity-robustness")
    f = spec.figures
    z, images = top_samples(codes_path, acts_path, data_path, spec.split, f.top_images)
    k = table["complexity"].to_numpy()
    fig, rho = plots.complexity_vs_importance(table)
    store.save_figure(fig, outs["importance"], importance_numbers(table, rho, seed))
    store.save_figure(
        plots.iv_curves(table, layers),
        outs["iv_curves"],
        {
            **factor_numbers(factors_csv),
            "layers (identical ones merged)": ", ".join(layers)
            + (f" (merged: {', '.join(meta['merged_layers'])})" if meta.get("merged_layers") else ""),
            f"features with I_V < 0.8 from the dictionary layer {meta.get('dictionary_layer')}": str(
                meta.get("dictionary_layer_unreadable")
            ),
        },
    )
    sigmas, at_chance = np.asarray(rob["sigmas"]), np.asarray(rob["at_chance"], bool)
    fig, rhos = plots.relations(table, sigmas, np.asarray(rob["accuracy"]), at_chance, meta["noise_units"])
    numbers = {
        f"accuracy under noise sigma {s:g} ({meta['noise_units']})": f"{a:.3f}"
        for s, a in zip(sigmas, rob["accuracy"], strict=True)
    }
    numbers.update({f"rho(K, {c})": f"{r} (paper: negative)" for c, r in rhos.items() if c.startswith("redundancy")})
    numbers.update(
        {
            f"rho(K, redundancy_p{p}) per mask seed ({meta['redundancy_masks']} masks each)": ", ".join(
                f"{r:+.3f}" for r in seeds
            )
            for p, seeds in meta["redundancy_seed_rho"].items()
        }
    )
    participation = spearman_ci(k, table["participation"].to_numpy(), seed=seed)
    numbers["rho(K, participation ratio of X^T z_i)"] = f"{participation} (featflow's; paper's reading: negative)"
    numbers.update({f"rho(K, {c})": f"{r} (paper: positive)" for c, r in rhos.items() if c.startswith("sensitivity")})
    numbers.update(
        {f"sigma {s:g}": "left out: accuracy at chance" for s, bad in zip(sigmas, at_chance, strict=True) if bad}
    )
    numbers["rho(K, signed importance)"] = str(rhos["importance"])
    numbers["inhibitors (Gamma < 0)"] = str(int((table["importance"] < 0).sum()))
    store.save_figure(fig, outs["relations"], numbers)
    alive = int((np.linalg.norm(atoms, axis=1) > 0).sum())
    embedding = "UMAP" if alive >= plots.UMAP_MIN_ATOMS else f"spectral embedding (< {plots.UMAP_MIN_ATOMS} atoms)"
    store.save_figure(
        plots.atom_map(atoms, k, f.umap_neighbors, seed),
        outs["umap"],
        {"atoms": str(atoms.shape[0]), "embedding": embedding},
    )
    stability = {}
    if "k_seed_spearman" in meta:
        stability["K across two dictionary seeds (Spearman, matched atoms)"] = (
            f"{meta['k_seed_spearman']:.3f} (median matched atom cosine {meta['atom_match_cosine_median']:.3f})"
        )
    store.save_figure(
        plots.top_images(images, z, k, f.n_features, f.top_images),
        outs["top_images"],
        {
            "K range": f"{np.nanmin(k):.3f} .. {np.nanmax(k):.3f}",
            "dictionary": meta["method"],
            **({"code ridge": f"{spec.dictionary.code_ridge:g}"} if meta["nnls_codes"] else {}),
            "relative reconstruction error": f"{meta['relative_error']:.4f}",
            "accuracy with the reconstruction": (
                f"{meta['accuracy_reconstructed']:.4f} (of {meta['accuracy']:.4f}; paper: > 99% kept)"
            ),
            **stability,
        },
    )
