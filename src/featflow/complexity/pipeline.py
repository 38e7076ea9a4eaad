"""Stage functions of the complexity branch: each reads its inputs, computes, and writes one file.

Files (kind in brackets): ``dictionary.h5`` [complexity-dictionary] atoms (k, d), train codes, relative error,
accuracy with ``z D`` in place of the activations; ``codes_{split}.h5`` [complexity-codes]; ``vinfo.h5``
[complexity-vinfo] I_V (L, k) and K (k,); ``redundancy.h5``, ``robustness.h5``, ``importance.h5``; the feature
table and the planted-factor table (CSV + Parquet).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.activations import pool
from featflow.complexity.spec import ComplexitySpec
from featflow.data import load_split
from featflow.dictionary import NMFDictionary, fit_nmf, fit_nmf_online, relative_error
from featflow.metrics import cka, robustness, vinfo
from featflow.metrics.importance import importance
from featflow.models import classifier_head, forward_to, load_checkpoint

log = logging.getLogger(__name__)

Path_ = str | Path


def dictionary_layer(spec: ComplexitySpec, layers: list[str]) -> str:
    """The layer the dictionary is fit on: ``dictionary.layer`` or the experiment's last (penultimate) layer."""
    layer = spec.dictionary.layer or layers[-1]
    if layer not in layers:
        raise ValueError(
            f"config key 'complexity.dictionary.layer': '{layer}' is not one of the experiment's layers {layers}"
        )
    return layer


def _activations(path: Path_) -> tuple[dict[str, Any], dict[str, Any]]:
    return store.read_h5(path, "activations"), store.read_attrs(path, "activations")


def _accuracy_with(model: Any, reconstructed: torch.Tensor, labels: np.ndarray) -> float:
    """Accuracy of the model's linear head fed with reconstructed penultimate activations."""
    with torch.no_grad():
        logits = classifier_head(model)(reconstructed.float())
    return float((logits.argmax(1).cpu().numpy() == labels).mean())


def fit_dictionary(
    acts_path: Path_,
    checkpoint: Path_,
    spec: ComplexitySpec,
    layer: str,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    seed: int,
) -> None:
    """Fit the NMF dictionary on one layer of the training activations and write atoms, codes and quality."""
    ds = spec.dictionary
    gen = torch.Generator(device=device).manual_seed(seed)
    if ds.batch_size is None:
        a = torch.from_numpy(store.read_h5(acts_path, "activations")["layers"][layer]).double().to(device)
        result = fit_nmf(a, ds.k, ds.iterations, ds.solver, ds.tol, gen)
        atoms, codes = result.atoms, result.codes
    else:
        with store.h5_reader(acts_path, "activations") as handle:
            dset = handle["layers"][layer]
            n = dset.shape[0]

            def batches():  # streamed from the file: memory independent of n
                for s in range(0, n, ds.batch_size):
                    yield torch.from_numpy(dset[s : s + ds.batch_size]).double().to(device)

            atoms = fit_nmf_online(batches, ds.k, ds.epochs, ds.code_iterations, generator=gen)
        a = torch.from_numpy(store.read_h5(acts_path, "activations")["layers"][layer]).double().to(device)
        codes = NMFDictionary(atoms, ds.code_iterations).encode(a)
    labels = store.read_h5(acts_path, "activations")["labels"]
    model, _ = load_checkpoint(checkpoint, device)
    err = relative_error(a, codes, atoms)
    acc, acc_rec = _accuracy_with(model, a, labels), _accuracy_with(model, codes @ atoms, labels)
    log.info(
        "dictionary on %s: k=%d, d=%d, relative error %.4f, accuracy %.4f -> %.4f with z D*",
        layer,
        ds.k,
        a.shape[1],
        err,
        acc,
        acc_rec,
    )
    store.write_h5(
        out,
        "complexity-dictionary",
        {"atoms": atoms.float().cpu().numpy(), "codes": codes.float().cpu().numpy()},
        {**attrs, "layer": layer, "relative_error": err, "accuracy": acc, "accuracy_reconstructed": acc_rec},
    )


def encode_split(
    dict_path: Path_,
    acts_path: Path_,
    checkpoint: Path_,
    spec: ComplexitySpec,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Codes of one split's activations with the dictionary fixed (batched NNLS)."""
    dic = store.read_h5(dict_path, "complexity-dictionary")
    layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    acts = store.read_h5(acts_path, "activations")
    # float32 codes: same residual as float64 at these tolerances (bench/RESULTS.md), 2-3x faster
    a = torch.from_numpy(acts["layers"][layer]).float().to(device)
    atoms = torch.from_numpy(dic["atoms"]).float().to(device)
    codes = NMFDictionary(atoms, spec.dictionary.code_iterations).encode(a)
    model, _ = load_checkpoint(checkpoint, device)
    err = relative_error(a, codes, atoms)
    acc, acc_rec = _accuracy_with(model, a, acts["labels"]), _accuracy_with(model, codes @ atoms, acts["labels"])
    log.info("codes of %d samples: relative error %.4f, accuracy %.4f -> %.4f with z D*", a.shape[0], err, acc, acc_rec)
    store.write_h5(
        out,
        "complexity-codes",
        {"codes": codes.float().cpu().numpy()},
        {**attrs, "layer": layer, "relative_error": err, "accuracy": acc, "accuracy_reconstructed": acc_rec},
    )


def _vinfo_layers(
    acts: dict[str, Any], layer_names: list[str], data_path: Path_, split: str, spec: ComplexitySpec
) -> dict[str, np.ndarray]:
    layers: dict[str, np.ndarray] = {}
    if spec.vinfo.include_input:
        images = load_split(data_path, split).x[acts["indices"]]
        layers["input"] = vinfo.pooled_input(images, spec.vinfo.input_grid)
    layers.update({name: acts["layers"][name] for name in layer_names})
    return layers


def compute_vinfo(
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    spec: ComplexitySpec,
    out: Path_,
    factors_csv: Path_,
    attrs: dict[str, Any],
    seed: int,
) -> None:
    """I_V of every feature from every layer, complexity K, and the same for the data set's planted factors."""
    acts, acts_attrs = _activations(acts_path)
    names = list(acts_attrs["layers"])
    layers = _vinfo_layers(acts, names, data_path, spec.split, spec)
    z = store.read_h5(codes_path, "complexity-codes")["codes"]
    v = spec.vinfo
    iv = vinfo.v_information(layers, z, v.test_fraction, seed, v.ridge_scale)
    k_feat = vinfo.complexity(iv)
    rows = []
    if "factors" in acts:
        factor_names = list(acts_attrs["factor_names"])
        f_iv = vinfo.v_information(layers, acts["factors"].astype(np.float64), v.test_fraction, seed, v.ridge_scale)
        f_k = vinfo.complexity(f_iv)
        for j, name in enumerate(factor_names):
            rows.append(
                {"factor": name, "complexity": f_k[j], **{f"iv_{layer}": f_iv[i, j] for i, layer in enumerate(layers)}}
            )
            log.info("factor %-12s K = %.4f  I_V per layer %s", name, f_k[j], np.round(f_iv[:, j], 4).tolist())
    table = pd.DataFrame(rows, columns=["factor", "complexity", *[f"iv_{layer}" for layer in layers]])
    store.write_table(table, factors_csv, Path(factors_csv).with_suffix(".parquet"))
    log.info(
        "features: K median %.4f (range %.4f..%.4f), %d constant features",
        np.nanmedian(k_feat),
        np.nanmin(k_feat),
        np.nanmax(k_feat),
        int(np.isnan(k_feat).sum()),
    )
    store.write_h5(out, "complexity-vinfo", {"iv": iv, "complexity": k_feat}, {**attrs, "layers": list(layers)})


def compute_redundancy(
    codes_path: Path_, acts_path: Path_, layer: str, spec: ComplexitySpec, out: Path_, attrs: dict[str, Any], seed: int
) -> None:
    """Redundancy of every feature under random neuron keep-masks of the dictionary layer, per drop fraction."""
    x = store.read_h5(acts_path, "activations")["layers"][layer]
    z = store.read_h5(codes_path, "complexity-codes")["codes"]
    rng = np.random.default_rng(seed)
    red = np.stack([cka.redundancy(x, z, p, spec.redundancy.masks, rng) for p in spec.redundancy.drop])
    log.info("redundancy median per drop %s: %s", list(spec.redundancy.drop), np.nanmedian(red, 1).round(4))
    store.write_h5(out, "complexity-redundancy", {"redundancy": red, "drop": np.asarray(spec.redundancy.drop)}, attrs)


def compute_robustness(
    checkpoint: Path_,
    data_path: Path_,
    dict_path: Path_,
    spec: ComplexitySpec,
    pool_mode: str,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    seed: int,
) -> None:
    """Noise sensitivity of every feature at every sigma on the first ``robustness.images`` images."""
    model, _ = load_checkpoint(checkpoint, device)
    layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    dic = NMFDictionary(
        torch.from_numpy(store.read_h5(dict_path, "complexity-dictionary")["atoms"]).to(device),
        spec.dictionary.code_iterations,
    )
    images = load_split(data_path, spec.split).x[: spec.robustness.images].to(device)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return dic.encode(pool(forward_to(model, x, layer), pool_mode))

    r = spec.robustness
    sens = robustness.sensitivity(images, encode, r.sigmas, r.draws, torch.Generator(device=device).manual_seed(seed))
    log.info("sensitivity median per sigma %s: %s", list(r.sigmas), np.nanmedian(sens.cpu().numpy(), 1).round(4))
    store.write_h5(
        out, "complexity-robustness", {"sensitivity": sens.cpu().numpy(), "sigmas": np.asarray(r.sigmas)}, attrs
    )


def compute_importance(
    checkpoint: Path_, codes_path: Path_, acts_path: Path_, dict_path: Path_, out: Path_, attrs: dict[str, Any]
) -> None:
    """Closed-form gradient x input of every feature with the model's predicted classes."""
    model, _ = load_checkpoint(checkpoint, "cpu")
    head = classifier_head(model)
    z = torch.from_numpy(store.read_h5(codes_path, "complexity-codes")["codes"]).double()
    atoms = torch.from_numpy(store.read_h5(dict_path, "complexity-dictionary")["atoms"]).double()
    predicted = torch.from_numpy(store.read_h5(acts_path, "activations")["logits"].argmax(1))
    signed, absolute = importance(z, atoms, head.weight.detach().double(), predicted)
    log.info("importance: %d inhibitors of %d features", int((signed < 0).sum()), signed.shape[0])
    store.write_h5(out, "complexity-importance", {"signed": signed.numpy(), "absolute": absolute.numpy()}, attrs)


def hoyer(atoms: np.ndarray) -> np.ndarray:
    """Hoyer sparsity (sqrt(d) - l1/l2) / (sqrt(d) - 1) of each row, in [0, 1]: (k, d) -> (k,)."""
    d = atoms.shape[1]
    l1, l2 = np.abs(atoms).sum(1), np.linalg.norm(atoms, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.sqrt(d) - l1 / l2) / (np.sqrt(d) - 1)


def feature_table(
    dict_path: Path_,
    codes_path: Path_,
    vinfo_path: Path_,
    redundancy_path: Path_,
    robustness_path: Path_,
    importance_path: Path_,
    csv: Path_,
    parquet: Path_,
) -> pd.DataFrame:
    """One row per feature: complexity, per-layer I_V, redundancy, sensitivity, importance, sparsity, usage."""
    atoms = store.read_h5(dict_path, "complexity-dictionary")["atoms"]
    z = store.read_h5(codes_path, "complexity-codes")["codes"]
    vi, vi_attrs = store.read_h5(vinfo_path, "complexity-vinfo"), store.read_attrs(vinfo_path, "complexity-vinfo")
    red = store.read_h5(redundancy_path, "complexity-redundancy")
    rob = store.read_h5(robustness_path, "complexity-robustness")
    imp = store.read_h5(importance_path, "complexity-importance")
    cols: dict[str, Any] = {"feature": np.arange(atoms.shape[0]), "complexity": vi["complexity"]}
    cols.update({f"iv_{name}": vi["iv"][i] for i, name in enumerate(vi_attrs["layers"])})
    cols.update({f"redundancy_p{p:g}": red["redundancy"][i] for i, p in enumerate(red["drop"])})
    cols.update({f"sensitivity_s{s:g}": rob["sensitivity"][i] for i, s in enumerate(rob["sigmas"])})
    cols.update(
        {
            "importance": imp["signed"],
            "importance_abs": imp["absolute"],
            "hoyer": hoyer(atoms),
            "usage": (z > 1e-6 * max(float(z.max()), 1e-12)).mean(0),
        }
    )
    table = pd.DataFrame(cols)
    store.write_table(table, csv, parquet)
    return table


def figures(
    table_path: Path_,
    vinfo_path: Path_,
    dict_path: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    spec: ComplexitySpec,
    outs: dict[str, Path_],
    seed: int,
) -> None:
    """The four complexity figures: importance scatter, I_V curves, atom UMAP, top-activating images."""
    from featflow.plots import complexity as plots

    table = pd.read_parquet(table_path)
    layers = list(store.read_attrs(vinfo_path, "complexity-vinfo")["layers"])
    atoms = store.read_h5(dict_path, "complexity-dictionary")["atoms"]
    z = store.read_h5(codes_path, "complexity-codes")["codes"]
    indices = store.read_h5(acts_path, "activations")["indices"]
    images = load_split(data_path, spec.split).x[indices].numpy()
    k = table["complexity"].to_numpy()
    f = spec.figures
    store.save_figure(plots.complexity_vs_importance(table), outs["importance"])
    store.save_figure(plots.iv_curves(table, layers), outs["iv_curves"])
    store.save_figure(plots.atom_map(atoms, k, f.umap_neighbors, seed), outs["umap"])
    store.save_figure(plots.top_images(images, z, k, f.n_features, f.top_images), outs["top_images"])
