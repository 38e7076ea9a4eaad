"""Entry points of complexity over training (SPEC 1.7; Fel et al. 2024, Fig. 5; called by featflow.temporal.stage).

Files (kind in brackets), per checkpoint epoch e of the experiment's model: ``epoch_e/decoding.h5``
[temporal-decoding] I_V (L, k) of the final dictionary's features and (L, F) of the planted factors from the
checkpoint's layers; ``epoch_e/sediment.h5`` [temporal-sediment] the checkpoint's own dictionary (atoms, test codes)
with the I_V and K of its features. Then ``temporal.h5`` [temporal] the curves over epochs, emergence epochs and the
matched K, with the feature table ``emergence.csv|.parquet`` and the planted factors' ``factors.csv``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.complexity import pipeline
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import relative_error
from featflow.metrics import vinfo
from featflow.metrics.stats import spearman_ci
from featflow.temporal import emergence
from featflow.temporal.spec import TemporalSpec

log = logging.getLogger(__name__)

Path_ = str | Path
PLANTED_ORDER = ("color", "orientation", "parity")  # SPEC 5.1: designed from simple to complex


def decode_epoch(
    acts_path: Path_, codes_path: Path_, spec: ComplexitySpec, epoch: int, out: Path_, attrs: dict[str, Any], seed: int
) -> None:
    """I_V of every final feature (codes of the final dictionary on the same images) and of every planted factor
    from each layer of one checkpoint: the complexity branch's V-information, all features at once."""
    acts, acts_attrs = store.read_h5(acts_path, "activations"), store.read_attrs(acts_path, "activations")
    names = list(acts_attrs["layers"])
    z = store.read_h5(codes_path, "complexity-codes")["codes"]
    if z.shape[0] != acts["labels"].shape[0]:
        raise ValueError(f"{codes_path}: {z.shape[0]} codes for the {acts['labels'].shape[0]} images of {acts_path}")
    layers = {name: acts["layers"][name] for name in names}
    v = spec.vinfo
    arrays = {"iv": vinfo.v_information(layers, z, v.test_fraction, seed, v.ridge_scale)}
    factor_names = list(acts_attrs.get("factor_names", []))
    if "factors" in acts:
        f = acts["factors"].astype(np.float64)
        arrays["factor_iv"] = vinfo.v_information(layers, f, v.test_fraction, seed, v.ridge_scale)
        last = np.round(arrays["factor_iv"][-1], 4).tolist()
        log.info("epoch %d: factor I_V from %s %s", epoch, names[-1], dict(zip(factor_names, last, strict=True)))
    log.info("epoch %d: median I_V of the final features per layer %s", epoch, np.nanmedian(arrays["iv"], 1).round(4))
    store.write_h5(
        out,
        "temporal-decoding",
        arrays,
        {**attrs, "epoch": epoch, "layers": names, "factor_names": factor_names, "accuracy": acts_attrs["accuracy"]},
    )


def sediment_spec(spec: ComplexitySpec, temporal: TemporalSpec) -> ComplexitySpec:
    """The complexity spec of a checkpoint's dictionary: the branch's, with the sediment's atoms and iterations."""
    sed = temporal.sediment
    changes = {"second_seed": False}
    if sed.k is not None:
        changes["k"] = sed.k
    if sed.iterations is not None:
        changes["iterations"] = sed.iterations
    return dataclasses.replace(spec, dictionary=dataclasses.replace(spec.dictionary, **changes))


def sediment_epoch(
    train_acts: Path_,
    test_acts: Path_,
    data_path: Path_,
    spec: ComplexitySpec,
    temporal: TemporalSpec,
    layer: str,
    epoch: int,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    seed: int,
) -> None:
    """A dictionary of one checkpoint: the complexity branch's NMF on its training activations, codes of the
    analyzed split, and the complexity K of its features from its own layers (as the final dictionary's K)."""
    sed = sediment_spec(spec, temporal)
    atoms = pipeline._fit_atoms(train_acts, layer, sed, device, seed).float()
    acts, acts_attrs = store.read_h5(test_acts, "activations"), store.read_attrs(test_acts, "activations")
    a = torch.from_numpy(acts["layers"][layer]).float().to(device)
    codes = pipeline.encoder(atoms, sed).encode(a)
    err = relative_error(a, codes, atoms)
    layers, merged = vinfo.distinct_layers(
        pipeline.vinfo_layers(acts, list(acts_attrs["layers"]), data_path, spec.split, spec)
    )
    z = codes.cpu().numpy()
    v = spec.vinfo
    iv = vinfo.v_information(layers, z, v.test_fraction, seed, v.ridge_scale)
    k_feat = vinfo.complexity(iv)
    log.info(
        "epoch %d: dictionary of %d atoms on %s, relative error %.4f, K median %.4f",
        epoch,
        atoms.shape[0],
        layer,
        err,
        np.nanmedian(k_feat),
    )
    store.write_h5(
        out,
        "temporal-sediment",
        {"atoms": atoms.cpu().numpy(), "codes": z, "iv": iv, "complexity": k_feat},
        {**attrs, "epoch": epoch, "layer": layer, "layers": list(layers), "relative_error": err},
    )


def _planted_order(epochs: Mapping[str, float]) -> str:
    """Whether the planted factors emerge in their designed order (color <= orientation <= parity, color first)."""
    if not set(PLANTED_ORDER) <= set(epochs):
        return "n/a"
    c, o, p = (epochs[name] for name in PLANTED_ORDER)
    return "holds" if c <= o <= p and c < p else "VIOLATED"


def _by_epoch(paths: Sequence[Path_], kind: str) -> dict[int, Path_]:
    """Files of one kind keyed by the epoch they record."""
    return {int(store.read_attrs(path, kind)["epoch"]): path for path in paths}


def summarize(
    decoding_paths: Sequence[Path_],
    sediment_paths: Sequence[Path_],
    vinfo_path: Path_,
    dict_path: Path_,
    codes_path: Path_,
    factors_path: Path_,
    temporal: TemporalSpec,
    out: Path_,
    table_csv: Path_,
    table_parquet: Path_,
    factors_csv: Path_,
    attrs: dict[str, Any],
) -> dict[str, Any]:
    """Curves over training, emergence epochs, rank correlation of K and emergence, matched K (sedimentation).

    ``decoding_paths`` are the decoding files of every epoch (the last: the final model), ``sediment_paths`` the
    dictionaries of the checkpoints before it; the final epoch's dictionary is the complexity branch's. Returns
    the headline numbers (also the file's attributes).
    """
    decoding = _by_epoch(decoding_paths, "temporal-decoding")
    sediments = _by_epoch(sediment_paths, "temporal-sediment")
    epochs = np.array(sorted(decoding), dtype=float)
    files = [store.read_h5(decoding[e], "temporal-decoding") for e in sorted(decoding)]
    meta = store.read_attrs(decoding[max(decoding)], "temporal-decoding")
    names = list(meta["layers"])
    layer = temporal.layer or store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    if layer not in names:
        raise ValueError(f"config key 'temporal.layer': '{layer}' is not one of the experiment's layers {names}")
    at = names.index(layer)
    iv = np.stack([f["iv"] for f in files])  # (E, L, k)
    curves = iv[:, at, :]
    k_final = store.read_h5(vinfo_path, "complexity-vinfo")["complexity"]
    emerged = emergence.emergence_epoch(curves, epochs, temporal.fraction)
    rho = spearman_ci(k_final, emerged)
    accuracy = [float(store.read_attrs(decoding[e], "temporal-decoding")["accuracy"]) for e in sorted(decoding)]
    numbers: dict[str, Any] = {
        "epochs": [int(e) for e in epochs],
        "layer": layer,
        "fraction": temporal.fraction,
        "accuracy": accuracy,
        "rho_k_emergence": rho.rho,
        "rho_k_emergence_text": str(rho),
    }
    arrays: dict[str, Any] = {"epochs": epochs, "iv": iv, "curves": curves, "emergence": emerged, "complexity": k_final}
    # planted factors: I_V over training from the same layer, their emergence, and their (final) K
    factor_rows = []
    if "factor_iv" in files[-1]:
        f_names = list(meta["factor_names"])
        f_curves = np.stack([f["factor_iv"][at] for f in files])  # (E, F)
        f_emerged = emergence.emergence_epoch(f_curves, epochs, temporal.fraction)
        arrays.update(factor_curves=f_curves, factor_emergence=f_emerged)
        cx = store.read_table(factors_path).set_index("factor")["complexity"] if Path(factors_path).is_file() else {}
        for j, name in enumerate(f_names):
            factor_rows.append(
                {
                    "factor": name,
                    "complexity": float(cx[name]) if name in cx else np.nan,
                    "emergence_epoch": f_emerged[j],
                    **{f"iv_epoch_{int(e)}": f_curves[i, j] for i, e in enumerate(epochs)},
                }
            )
        numbers["factor_emergence"] = {name: float(f_emerged[j]) for j, name in enumerate(f_names)}
        numbers["planted_order"] = _planted_order(numbers["factor_emergence"])
        log.info("planted factors emerge at %s: order %s", numbers["factor_emergence"], numbers["planted_order"])
    # sedimentation: each checkpoint's dictionary matched one-to-one to the final one, K of the matched features
    k = k_final.shape[0]
    matched = np.full((len(epochs), k), np.nan)
    matched[-1] = k_final
    cosines = np.full(len(epochs), np.nan)
    final_atoms = store.read_h5(dict_path, "complexity-dictionary")["atoms"]
    final_codes = store.read_h5(codes_path, "complexity-codes")["codes"]
    for i, e in enumerate(epochs[:-1]):
        if int(e) not in sediments:
            continue
        sed = store.read_h5(sediments[int(e)], "temporal-sediment")
        a, b = (sed["atoms"], final_atoms) if temporal.sediment.match == "atoms" else (sed["codes"].T, final_codes.T)
        rows, cols, cos = emergence.match(a, b)
        matched[i] = emergence.matched_values(sed["complexity"], rows, cols, k)
        cosines[i] = float(np.median(cos))
    arrays.update(matched_complexity=matched, match_cosine=cosines)
    frac, n_frac = emergence.decreasing_fraction(matched[0], matched[-1])
    # from each checkpoint to the end: a feature still being learned can grow more complex before it sediments
    by_epoch = [emergence.decreasing_fraction(matched[i], matched[-1]) for i in range(len(epochs) - 1)]
    arrays["k_decreasing"] = np.array([f for f, _ in by_epoch])
    numbers.update(k_decreasing=frac, k_decreasing_n=n_frac, match=temporal.sediment.match)
    log.info(
        "rho(K, emergence epoch) %s; K decreases for %.3f of %d matched features (median cosines %s)",
        rho,
        frac,
        n_frac,
        np.round(cosines, 3),
    )
    table = pd.DataFrame(
        {
            "feature": np.arange(k),
            "complexity": k_final,
            "emergence_epoch": emerged,
            **{f"iv_epoch_{int(e)}": curves[i] for i, e in enumerate(epochs)},
            **{f"k_epoch_{int(e)}": matched[i] for i, e in enumerate(epochs)},
        }
    )
    table.attrs = {key: value for key, value in numbers.items() if key != "rho_k_emergence_text"}
    store.write_table(table, table_csv, table_parquet)
    store.write_table(pd.DataFrame(factor_rows), factors_csv)
    flat = {key: (str(value) if isinstance(value, dict) else value) for key, value in numbers.items()}
    store.write_h5(out, "temporal", arrays, {**attrs, **flat})
    return numbers


def figures(temporal_path: Path_, factors_csv: Path_, outs: Mapping[str, Path_]) -> None:
    """Temporal decoding (I_V over epochs of the simplest and most complex deciles, the planted factors; emergence
    epoch against K) and sedimentation (K of the matched features over training), each with its numbers beside
    the paper's claim."""
    from featflow.plots import temporal as plots

    data, meta = store.read_h5(temporal_path, "temporal"), store.read_attrs(temporal_path, "temporal")
    epochs, k_final = data["epochs"], data["complexity"]
    factors = store.read_table(factors_csv)
    fig, rho = plots.decoding(epochs, data["curves"], k_final, data["emergence"], factors, str(meta["layer"]))
    numbers = {
        "rho(K, emergence epoch)": f"{rho} (paper: positive, simple features become decodable first)",
        "emergence": f"first checkpoint with I_V from {meta['layer']} >= {meta['fraction']:g} x its final I_V",
        "checkpoints (epochs; the last is the final model)": ", ".join(str(int(e)) for e in epochs),
        "test accuracy per checkpoint": ", ".join(f"{a:.3f}" for a in np.atleast_1d(meta["accuracy"])),
    }
    if len(factors):
        numbers["planted factors' emergence epoch"] = ", ".join(
            f"{row.factor} {row.emergence_epoch:g}" for row in factors.itertuples()
        )
        numbers["planted order color <= orientation <= parity (color first)"] = str(meta.get("planted_order"))
    store.save_figure(fig, outs["decoding"], numbers)
    fig = plots.sedimentation(epochs, data["matched_complexity"], k_final)
    cos = ", ".join(f"{int(e)}: {c:.3f}" for e, c in zip(epochs[:-1], data["match_cosine"][:-1], strict=True))
    store.save_figure(
        fig,
        outs["sedimentation"],
        {
            "features whose K decreases over training": (
                f"{meta['k_decreasing']:.3f} of {int(meta['k_decreasing_n'])} matched from the first checkpoint "
                "(paper: K decreases over training, features sediment)"
            ),
            f"median matched cosine ({meta['match']}) per checkpoint": cos,
            "fraction whose K decreases from each checkpoint to the end": ", ".join(
                f"{int(e)}: {f:.3f}" for e, f in zip(epochs[:-1], data["k_decreasing"], strict=True)
            ),
        },
    )
