"""Entry points of complexity over training (SPEC 1.7; Fel et al. 2024, Fig. 5; called by featflow.temporal.stage).

Files (kind in brackets), per checkpoint epoch e of the experiment's model: ``epoch_e/decoding.h5``
[temporal-decoding] I_V (L, k) of the final dictionary's features and (L, F) of the planted factors from the
checkpoint's layers; ``epoch_e/sediment.h5`` [temporal-sediment] the checkpoint's own dictionary (atoms, test codes)
with the I_V and K of its features. Then ``temporal.h5`` [temporal] the curves over epochs, emergence epochs and the
matched K, with the feature table ``emergence.csv|.parquet`` and the planted factors' ``factors.csv``. The figures
are drawn from ``temporal.h5`` by :mod:`featflow.temporal.figures`, which imports no torch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.complexity.dictionary import fit
from featflow.complexity.spec import ComplexitySpec
from featflow.complexity.vinfo import vinfo_layers
from featflow.dictionary.base import Dictionary
from featflow.metrics import vinfo
from featflow.metrics.stats import spearman_ci
from featflow.temporal import emergence
from featflow.temporal.spec import TemporalSpec

log = logging.getLogger(__name__)

Path_ = str | Path
PLANTED_ORDER = ("color", "orientation", "parity")  # SPEC 5.1: designed from simple to complex


def decode_epoch(
    spec: ComplexitySpec,
    epoch: int,
    *,
    acts_path: Path_,
    codes_path: Path_,
    out: Path_,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """I_V of every final feature (codes of the final dictionary on the same images) and of every planted factor
    from each layer of one checkpoint: the complexity branch's V-information, all features and factors in one
    ridge solve per layer, streamed over row chunks of the two files (memory flat in the number of images)."""
    acts_attrs = store.read_attrs(acts_path, "activations")
    names = list(acts_attrs["layers"])
    shapes = store.shapes(acts_path, "activations")
    n, (n_codes, k) = shapes["labels"][0], store.shapes(codes_path, "complexity-codes")["codes"]
    if n_codes != n:
        raise ValueError(f"{codes_path}: {n_codes} codes for the {n} images of {acts_path}")
    has_factors = "factors" in shapes
    sources = [(acts_path, "activations", f"layers/{name}") for name in names]
    sources += [(codes_path, "complexity-codes", "codes")] + [(acts_path, "activations", "factors")] * has_factors

    def chunks() -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
        for _, arrays in store.iter_rows(sources):
            yield arrays[: len(names)], np.concatenate(arrays[len(names) :], 1)  # codes | factors: one solve

    v = spec.vinfo
    every = vinfo.v_information_chunks(chunks(), n, v.test_fraction, seed, v.ridge_scale)
    arrays = {"iv": every[:, :k]}
    factor_names = list(acts_attrs.get("factor_names", []))
    if has_factors:
        arrays["factor_iv"] = every[:, k:]
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
    """The one dictionary recipe of sedimentation, at every epoch the final one included: the complexity branch's
    dictionary method with the sediment's atoms and iterations (one fit, no second seed)."""
    sed = temporal.sediment
    changes = {"second_seed": False}
    if sed.k is not None:
        changes["k"] = sed.k
    if sed.iterations is not None:
        changes["iterations"] = sed.iterations
    return dataclasses.replace(spec, dictionary=dataclasses.replace(spec.dictionary, **changes))


def checkpoint_importance(
    checkpoint: Path_, *, dictionary: Dictionary, codes: np.ndarray, acts_path: Path_, layer: str, logits: np.ndarray
) -> np.ndarray:
    """(2, k) signed and absolute gradient x input of a checkpoint's features: the complexity branch's form
    (featflow.complexity.importance: the predicted logit's gradient at the reconstruction, through the layer's
    readout; the class weight for the penultimate layer) with that checkpoint's network and predicted classes."""
    from featflow.complexity.codes import layer_readout
    from featflow.complexity.importance import logit_gradients
    from featflow.metrics.importance import importance
    from featflow.models import load_checkpoint

    model, _ = load_checkpoint(checkpoint, "cpu")
    head = layer_readout(model, acts_path, layer).double()
    z, fitted = torch.from_numpy(codes).double(), dictionary.to("cpu")
    classes = torch.from_numpy(np.asarray(logits).argmax(1))
    grads = logit_gradients(head, fitted.decode(z.float()).double(), classes)
    signed, absolute = importance(z, fitted.atoms.double(), grads)
    return torch.stack([signed, absolute]).numpy()


def sediment_epoch(
    spec: ComplexitySpec,
    temporal: TemporalSpec,
    layer: str,
    epoch: int,
    *,
    train_acts: Path_,
    test_acts: Path_,
    data_path: Path_,
    checkpoint: Path_,
    out: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """A dictionary of one epoch's network (:func:`sediment_spec`, the same recipe at every epoch): the experiment's
    dictionary method on its training activations, codes of the analyzed split, the complexity K of its features
    from its own layers and their importance through its own network (:func:`checkpoint_importance`)."""
    sed = sediment_spec(spec, temporal)
    dictionary = fit(train_acts, layer, sed.dictionary, device, seed)
    acts, acts_attrs = store.read_h5(test_acts, "activations"), store.read_attrs(test_acts, "activations")
    a = torch.from_numpy(acts["layers"][layer]).float().to(device)
    codes = dictionary.encode(a)
    err = float((a - dictionary.decode(codes)).norm() / a.norm().clamp_min(1e-12))
    atoms = dictionary.atoms
    layers, merged = vinfo.distinct_layers(vinfo_layers(acts, list(acts_attrs["layers"]), data_path, spec.split, spec))
    z, d = codes.cpu().numpy(), atoms.cpu().numpy()
    v = spec.vinfo
    iv = vinfo.v_information(layers, z, v.test_fraction, seed, v.ridge_scale)
    k_feat = vinfo.complexity(iv)
    signed, absolute = checkpoint_importance(
        checkpoint, dictionary=dictionary, codes=z, acts_path=test_acts, layer=layer, logits=acts["logits"]
    )
    log.info(
        "epoch %(epoch)d: dictionary of %(k)d atoms on %(layer)s, relative error %(err).4f, K median %(K).4f, "
        "rho(K, |importance|) %(rho)s",
        {
            "epoch": epoch,
            "k": atoms.shape[0],
            "layer": layer,
            "err": err,
            "K": np.nanmedian(k_feat),
            "rho": spearman_ci(k_feat, absolute),
        },
    )
    store.write_h5(
        out,
        "temporal-sediment",
        {"atoms": d, "codes": z, "iv": iv, "complexity": k_feat, "importance": signed, "importance_abs": absolute},
        {**attrs, "epoch": epoch, "layer": layer, "layers": list(layers), "relative_error": err},
    )


def _by_epoch(paths: Sequence[Path_], kind: str) -> dict[int, Path_]:
    """Files of one kind keyed by the epoch they record."""
    return {int(store.read_attrs(path, kind)["epoch"]): path for path in paths}


def _emergence(curves: np.ndarray, epochs: np.ndarray, temporal: TemporalSpec) -> tuple[np.ndarray, np.ndarray, str]:
    """Emergence epochs on the learned part and readability at the initialization of (E, k) curves, with "" or why
    they are not measured (no epoch-0 checkpoint: NaN)."""
    if epochs[0] != 0:
        why = "no epoch-0 checkpoint (the untrained control); add 0 to the model's train.checkpoints"
        log.warning("emergence not measured: %s", why)
        nan = np.full(curves.shape[1], np.nan)
        return nan, nan, why
    emerged = emergence.emergence_epoch(curves, epochs, temporal.fraction, temporal.min_gain)
    return emerged, emergence.readable_at_init(curves, epochs, temporal.fraction).astype(float), ""


def _decoding_numbers(
    curves: np.ndarray, epochs: np.ndarray, k_final: np.ndarray, temporal: TemporalSpec
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Emergence of the final features (learned part), the share readable at the initialization, rho(K, emergence)
    over the features that gain and rho(K, I_V_0) over all."""
    emerged, readable, why = _emergence(curves, epochs, temporal)
    rho = spearman_ci(k_final, emerged)
    rho_init = spearman_ci(k_final, curves[0]) if not why else spearman_ci(k_final, np.full_like(k_final, np.nan))
    numbers = {
        "rho_k_emergence": rho.rho,
        "rho_k_emergence_text": str(rho),
        "rho_k_iv0": rho_init.rho,
        "rho_k_iv0_text": str(rho_init),
        "readable_at_init": float(np.nanmean(readable)) if not why else float("nan"),
        "gaining": int(np.isfinite(emerged).sum()),
        "emergence_note": why,
    }
    return numbers, {"emergence": emerged, "readable_at_init": readable}


def _factors(
    files: list[dict[str, np.ndarray]],
    at: int,
    epochs: np.ndarray,
    f_names: list[str],
    factors_path: Path_,
    temporal: TemporalSpec,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, np.ndarray]]:
    """The planted factors' I_V over training from the decoding layer, their emergence (learned part), whether each
    is readable at the initialization, and whether they emerge in their designed order."""
    f_curves = np.stack([f["factor_iv"][at] for f in files])  # (E, F)
    f_emerged, f_readable, why = _emergence(f_curves, epochs, temporal)
    cx = store.read_table(factors_path).set_index("factor")["complexity"] if Path(factors_path).is_file() else {}
    rows = [
        {
            "factor": name,
            "complexity": float(cx[name]) if name in cx else np.nan,
            "emergence_epoch": f_emerged[j],
            "readable_at_init": f_readable[j],
            **{f"iv_epoch_{int(e)}": f_curves[i, j] for i, e in enumerate(epochs)},
        }
        for j, name in enumerate(f_names)
    ]
    order = (
        f"inconclusive: {why}"
        if why
        else emergence.planted_order(f_curves, epochs, f_names, PLANTED_ORDER, temporal.fraction, temporal.min_gain)
    )
    numbers = {
        "factor_emergence": {name: float(f_emerged[j]) for j, name in enumerate(f_names)},
        "planted_order": order,
    }
    log.info("planted factors emerge at %s: order %s", numbers["factor_emergence"], order)
    return rows, numbers, {"factor_curves": f_curves, "factor_emergence": f_emerged}


def _sedimentation(
    sediment_paths: Sequence[Path_], final_epoch: int, temporal: TemporalSpec
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, np.ndarray]]:
    """Each trained checkpoint's dictionary matched one-to-one to the final model's dictionary of the same recipe,
    the K and importance of the matched features over training, and per checkpoint the fraction of matched
    features whose K is lower at the end with its binomial p (the sign test against 1/2)."""
    sediments = _by_epoch(sediment_paths, "temporal-sediment")
    if final_epoch not in sediments:
        raise ValueError(
            f"sedimentation: no dictionary of the final model (epoch {final_epoch}) among {sorted(sediments)}"
        )
    epochs = [e for e in sorted(sediments) if e > 0]  # the untrained network's atoms match nothing learned
    files = {e: store.read_h5(sediments[e], "temporal-sediment") for e in epochs}
    final = files[final_epoch]
    k = final["complexity"].shape[0]
    matched, matched_imp = np.full((len(epochs), k), np.nan), np.full((len(epochs), k), np.nan)
    cosines = np.full((len(epochs), k), np.nan)
    for i, e in enumerate(epochs):
        sed = files[e]
        a, b = (
            (sed["atoms"], final["atoms"]) if temporal.sediment.match == "atoms" else (sed["codes"].T, final["codes"].T)
        )
        rows, cols, cos = emergence.match(a, b)
        matched[i] = emergence.matched_values(sed["complexity"], rows, cols, k)
        matched_imp[i] = emergence.matched_values(sed["importance_abs"], rows, cols, k)
        cosines[i] = emergence.matched_values(cos, np.arange(rows.size), cols, k)
    tests = np.array([emergence.sign_test(matched[i], matched[-1]) for i in range(len(epochs) - 1)]).reshape(-1, 3)
    table = pd.DataFrame(
        {
            "feature": np.arange(k),
            "complexity": final["complexity"],
            "importance": final["importance"],
            "importance_abs": final["importance_abs"],
            **{f"k_epoch_{e}": matched[i] for i, e in enumerate(epochs)},
            **{f"importance_abs_epoch_{e}": matched_imp[i] for i, e in enumerate(epochs)},
            **{f"cosine_epoch_{e}": cosines[i] for i, e in enumerate(epochs[:-1])},
        }
    )
    first = tests[0] if len(tests) else np.full(3, np.nan)
    numbers = {
        "match": temporal.sediment.match,
        "sediment_epochs": epochs,
        "k_decreasing": float(first[0]),
        "k_decreasing_n": int(np.nan_to_num(first[1])),
        "k_decreasing_p": float(first[2]),
    }
    arrays = {
        "sediment_epochs": np.array(epochs, float),
        "matched_complexity": matched,
        "matched_importance": matched_imp,
        "match_cosine": np.nanmedian(cosines, 1),
        "k_decreasing": tests[:, 0],
        "k_decreasing_n": tests[:, 1],
        "k_decreasing_p": tests[:, 2],
        "own_complexity": np.stack([files[e]["complexity"] for e in epochs]),
        "own_importance": np.stack([files[e]["importance_abs"] for e in epochs]),
    }
    log.info(
        "sedimentation from epochs %s to %d: K decreases for %s (binomial p %s)",
        epochs[:-1],
        final_epoch,
        np.round(tests[:, 0], 3),
        np.round(tests[:, 2], 4),
    )
    return table, numbers, arrays


def summarize(
    temporal: TemporalSpec,
    *,
    decoding_paths: Sequence[Path_],
    sediment_paths: Sequence[Path_],
    vinfo_path: Path_,
    dict_path: Path_,
    factors_path: Path_,
    out: Path_,
    tables: Mapping[str, Path_],
    attrs: dict[str, Any],
) -> dict[str, Any]:
    """Curves over training, emergence on the learned part against K, the planted factors' order, sedimentation.

    ``decoding_paths`` are the decoding files of every epoch (0: the untrained control; the last: the final
    model), ``sediment_paths`` the dictionaries of the trained epochs, the final one included (one recipe).
    ``tables`` names the outputs ``emergence_csv``, ``emergence_parquet``, ``factors_csv``, ``sediment_csv``,
    ``sediment_parquet``. Returns the headline numbers (also the file's attributes).
    """
    decoding = _by_epoch(decoding_paths, "temporal-decoding")
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
    accuracy = [float(store.read_attrs(decoding[e], "temporal-decoding")["accuracy"]) for e in sorted(decoding)]
    numbers, decoded = _decoding_numbers(curves, epochs, k_final, temporal)
    numbers = {
        "epochs": [int(e) for e in epochs],
        "layer": layer,
        "fraction": temporal.fraction,
        "min_gain": temporal.min_gain,
        "accuracy": accuracy,
        **numbers,
    }
    arrays: dict[str, Any] = {"epochs": epochs, "iv": iv, "curves": curves, "complexity": k_final, **decoded}
    factor_rows: list[dict[str, Any]] = []
    if "factor_iv" in files[-1]:
        factor_rows, f_numbers, f_arrays = _factors(
            files, at, epochs, list(meta["factor_names"]), factors_path, temporal
        )
        numbers.update(f_numbers)
        arrays.update(f_arrays)
    sed_table, sed_numbers, sed_arrays = _sedimentation(sediment_paths, int(epochs[-1]), temporal)
    numbers.update(sed_numbers)
    arrays.update(sed_arrays)
    log.info(
        "rho(K, emergence epoch) %s over %d gaining features; readable at initialization %.3f; rho(K, I_V_0) %s",
        numbers["rho_k_emergence_text"],
        numbers["gaining"],
        numbers["readable_at_init"],
        numbers["rho_k_iv0_text"],
    )
    table = pd.DataFrame(
        {
            "feature": np.arange(k_final.shape[0]),
            "complexity": k_final,
            "emergence_epoch": decoded["emergence"],
            "readable_at_init": decoded["readable_at_init"],
            **{f"iv_epoch_{int(e)}": curves[i] for i, e in enumerate(epochs)},
        }
    )
    table.attrs = {key: value for key, value in numbers.items() if not key.endswith("_text")}
    store.write_table(table, tables["emergence_csv"], tables["emergence_parquet"])
    store.write_table(pd.DataFrame(factor_rows), tables["factors_csv"])
    sed_table.attrs = {key: value for key, value in sed_numbers.items()}
    store.write_table(sed_table, tables["sediment_csv"], tables["sediment_parquet"])
    flat = {key: (str(value) if isinstance(value, dict) else value) for key, value in numbers.items()}
    store.write_h5(out, "temporal", arrays, {**attrs, **flat})
    return numbers
