"""Stage functions of the complexity branch: each reads its inputs, computes, and writes one file.

Files (kind in brackets): ``dictionary.h5`` [complexity-dictionary] atoms (k, d), train codes, relative error,
accuracy with ``z D`` in place of the activations; ``codes_{split}.h5`` [complexity-codes]; ``vinfo.h5``
[complexity-vinfo] I_V (L, k) and K (k,); ``redundancy.h5``, ``robustness.h5``, ``importance.h5``; the feature
table and the planted-factor table (CSV + Parquet). The feature table and the figures are written from these files
by :mod:`featflow.complexity.report`, which imports no torch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.activations import pool, shard_range
from featflow.complexity.report import read_atoms as _atoms
from featflow.complexity.spec import ComplexitySpec
from featflow.data import labels_of, load_split, split_size
from featflow.dictionary.nmf import NMFDictionary, fit_nmf, fit_nmf_online
from featflow.metrics import cka, robustness, vinfo
from featflow.metrics.importance import active_alignment, importance
from featflow.metrics.moments import CoMoments
from featflow.metrics.nnls import CodesReport
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


def _layer(path: Path_, layer: str) -> np.ndarray:
    """One layer's (N, d) activations, read without the file's other layers."""
    return store.read_items(path, "activations", [f"layers/{layer}"])[f"layers/{layer}"]


def _correct(model: Any, penultimate: torch.Tensor, labels: np.ndarray) -> int:
    """How many samples the model's linear head classifies right from (reconstructed) penultimate activations."""
    with torch.no_grad():
        logits = classifier_head(model)(penultimate.float())
    return int((logits.argmax(1).cpu().numpy() == labels).sum())


CODES_KIND = "complexity-codes"
CODES_SUMS = ("sq_err", "sq_norm", "hits", "hits_reconstructed", "samples")


def _codes_facts(sums: dict[str, float], report: CodesReport, layer: str) -> dict[str, Any]:
    """The attributes of a codes file from its sums (kept too, so that shards merge exactly): how the codes met
    the tolerance, the relative error ``||A - Z D|| / ||A||`` and the accuracy with ``A`` and with ``Z D``."""
    return {
        **report.attrs(),
        "layer": layer,
        "relative_error": math.sqrt(sums["sq_err"]) / max(math.sqrt(sums["sq_norm"]), 1e-12),
        "accuracy": sums["hits"] / sums["samples"],
        "accuracy_reconstructed": sums["hits_reconstructed"] / sums["samples"],
        "codes_sums": sums,
    }


def _encode_chunk(
    handle: Any,
    x: np.ndarray,
    labels: np.ndarray,
    enc: NMFDictionary,
    model: Any,
    device: torch.device,
    sums: dict[str, float],
) -> CodesReport:
    """Encode one chunk of activations ``x`` into ``handle["codes"]``, adding its error and hits to ``sums``. A
    function of its own so that the chunk's tensors are freed before the next chunk is read (held over, they
    were +10 MiB of peak memory from the second chunk on)."""
    # float32 codes: same residual as float64 at these tolerances (bench/RESULTS.md), 2-3x faster
    a = torch.from_numpy(x).float().to(device)
    codes, report = enc.encode_report(a)
    rec = enc.decode(codes)
    sums["sq_err"] += float((a - rec).square().sum())
    sums["sq_norm"] += float(a.square().sum())
    sums["hits"] += _correct(model, a, labels)
    sums["hits_reconstructed"] += _correct(model, rec, labels)
    sums["samples"] += len(labels)
    store.append_rows(handle, "codes", codes.cpu().numpy())
    return report


def _encode_layer(
    handle: Any,
    acts_path: Path_,
    layer: str,
    enc: NMFDictionary,
    model: Any,
    device: torch.device,
    rows: slice = slice(None),
) -> dict[str, Any]:
    """Encode ``rows`` of one layer of an activations file chunk by chunk (codes are per sample) into
    ``handle["codes"]``; store on ``handle`` and return :func:`_codes_facts`."""
    reports: list[CodesReport] = []
    sums = dict.fromkeys(CODES_SUMS, 0.0)
    sources = [(acts_path, "activations", f"layers/{layer}"), (acts_path, "activations", "labels")]
    mask = None
    if rows != slice(None):
        mask = np.zeros(store.shapes(acts_path, "activations")["labels"][0], bool)
        mask[rows] = True
    for _, (x, labels) in store.iter_rows(sources, mask):
        if len(labels):
            reports.append(_encode_chunk(handle, x, labels, enc, model, device, sums))
    facts = _codes_facts(sums, CodesReport.merged(reports), layer)
    store.set_attrs(handle, facts)
    log.info(
        "codes of %d samples of %s: relative error %.4f, accuracy %.4f -> %.4f with z D*",
        sums["samples"],
        layer,
        facts["relative_error"],
        facts["accuracy"],
        facts["accuracy_reconstructed"],
    )
    return facts


def positions(x: np.ndarray) -> np.ndarray:
    """Per-position maps (b, C, H, W) as samples of the C channels: (b * H * W, C), each image's positions in
    row-major order."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, x.shape[1])


def _fit_atoms(acts_path: Path_, layer: str, spec: ComplexitySpec, device: torch.device, seed: int) -> torch.Tensor:
    """(k, d) unit-norm atoms of one NMF fit (full batch or online) with the codes' ridge, on the layer's images
    or, with ``dictionary.positions``, on every position of its per-position maps (``spatial/<layer>``)."""
    ds = spec.dictionary
    gen = torch.Generator(device=device).manual_seed(seed)
    name = f"spatial/{layer}" if ds.positions else f"layers/{layer}"
    as_rows = positions if ds.positions else np.asarray
    with store.h5_reader(acts_path, "activations") as handle:
        if name not in handle:
            raise store.StoreError(
                f"{acts_path}: no {name}; add '{layer}' to the experiment's activations.spatial and re-extract"
            )
        dset = handle[name]
        n = dset.shape[0]
        if ds.batch_size is None:
            # float32: the blocked HALS recomputes its residuals from the Gram every block (no drift), and the fit
            # reaches the same error as in float64 (bench/RESULTS.md); the (n, k) codes are never float64
            a = torch.from_numpy(as_rows(dset[()])).float().to(device)
            return fit_nmf(a, ds.k, ds.iterations, ds.solver, ds.tol, gen, ds.code_ridge).atoms
        per_image = int(np.prod(dset.shape[2:])) if ds.positions else 1
        step = max(1, ds.batch_size // per_image)  # about batch_size rows (positions or images) per batch

        def batches():  # streamed from the file: memory independent of n
            for s in range(0, n, step):
                yield torch.from_numpy(as_rows(dset[s : s + step])).float().to(device)

        return fit_nmf_online(batches, ds.k, ds.epochs, ds.code_iterations, generator=gen, ridge=ds.code_ridge)


def encoder(atoms: torch.Tensor, spec: ComplexitySpec) -> NMFDictionary:
    """The one encoder of the branch: ridge NNLS with the configured mu, stopped per sample at the relative
    duality gap ``code_tol`` (at most ``code_iterations``), for the fit's codes and new inputs alike."""
    ds = spec.dictionary
    return NMFDictionary(atoms, ds.code_iterations, ds.code_ridge, ds.code_tol)


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
    """Fit the NMF dictionary on one layer of the training activations and write atoms, codes and quality.

    The stored train codes are re-encoded with the final atoms by :func:`encoder`, so they solve exactly the
    problem the codes of new inputs solve; with ``dictionary.positions`` the atoms are fit on positions and the
    images encoded by their pooled vectors (attributes ``fit_on``, ``fit_samples``). With ``second_seed`` a
    second dictionary (seed + 1) is stored as ``atoms_seed2`` for the stability of K across NMF seeds.
    """
    ds = spec.dictionary
    atoms = _fit_atoms(acts_path, layer, spec, device, seed).float()
    stored = store.shapes(acts_path, "activations")
    if atoms.shape[1] != stored[f"layers/{layer}"][1]:  # positions: C channels; the pooled vectors must match
        raise ValueError(
            f"complexity.dictionary.positions: atoms of {atoms.shape[1]} channels, but the pooled '{layer}' has "
            f"{stored[f'layers/{layer}'][1]} values per image; expected activations.pool: gap"
        )
    fit_rows = stored[f"spatial/{layer}"] if ds.positions else stored[f"layers/{layer}"]
    fit_samples = int(fit_rows[0] * np.prod(fit_rows[2:])) if ds.positions else int(fit_rows[0])
    model, _ = load_checkpoint(checkpoint, device)
    meta = {**attrs, "fit_on": "positions" if ds.positions else "images", "fit_samples": fit_samples}
    with store.h5_writer(out, "complexity-dictionary", meta) as handle:
        store.create_array(handle, "atoms", atoms.cpu().numpy())
        if ds.second_seed:
            second = _fit_atoms(acts_path, layer, spec, device, seed + 1).float().cpu().numpy()
            store.create_array(handle, "atoms_seed2", second)
        # float32 codes, as for new inputs, stopped at the same certified gap (bench/RESULTS.md); never float64
        _encode_layer(handle, acts_path, layer, encoder(atoms, spec), model, device)
    log.info(
        "dictionary on %s (%d %s): k=%d, d=%d, code ridge %g",
        layer,
        fit_samples,
        "positions" if ds.positions else "images",
        ds.k,
        atoms.shape[1],
        ds.code_ridge,
    )


def encode_split(
    dict_path: Path_,
    acts_path: Path_,
    checkpoint: Path_,
    spec: ComplexitySpec,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    shard: int = 0,
    shards: int = 1,
) -> None:
    """Codes of one split's activations with the dictionary fixed (batched NNLS), encoded and written chunk by
    chunk: memory does not grow with the number of samples. With ``shards`` > 1, only shard ``shard`` of that
    many contiguous slices of the samples (:func:`merge_codes` joins them into the file one job writes)."""
    layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    atoms = torch.from_numpy(_atoms(dict_path)).float().to(device)
    model, _ = load_checkpoint(checkpoint, device)
    n = store.shapes(acts_path, "activations")["labels"][0]
    rows = slice(*shard_range(n, shards, shard, "complexity.shards"))
    meta = {**attrs, **({"shard": shard, "shards": shards} if shards > 1 else {})}
    with store.h5_writer(out, CODES_KIND, meta) as handle:
        _encode_layer(handle, acts_path, layer, encoder(atoms, spec), model, device, rows)


def merge_codes(shard_paths: Sequence[Path_], out: Path_, attrs: dict[str, Any]) -> None:
    """Join the codes of shard files (in shard order) into the file a single job writes: codes streamed in
    order, the attributes recomputed from the shards' sums and reports."""
    metas = [store.read_attrs(path, CODES_KIND) for path in shard_paths]
    for number, (path, meta) in enumerate(zip(shard_paths, metas, strict=True)):
        if (meta.get("shard"), meta.get("shards"), meta["layer"]) != (number, len(shard_paths), metas[0]["layer"]):
            raise store.StoreError(
                f"merge_codes: {path} is shard {meta.get('shard')} of {meta.get('shards')} of layer {meta['layer']}; "
                f"expected shard {number} of {len(shard_paths)} of layer {metas[0]['layer']}"
            )
    sums = {key: sum(float(meta["codes_sums"][key]) for meta in metas) for key in CODES_SUMS}
    report = CodesReport.merged([CodesReport.from_attrs(meta) for meta in metas])
    with store.h5_writer(out, CODES_KIND, attrs) as handle:
        for path in shard_paths:
            for _, (codes,) in store.iter_rows([(path, CODES_KIND, "codes")]):
                store.append_rows(handle, "codes", codes)
        store.set_attrs(handle, _codes_facts(sums, report, metas[0]["layer"]))
    log.info("codes of %d shards merged: %d samples", len(shard_paths), int(sums["samples"]))


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
    sources += [(acts_path, "activations", item) for item in extra] + [(codes_path, "complexity-codes", "codes")]
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
    """Agreement of K across two NMF seeds: atoms matched one-to-one by cosine (Hungarian assignment), then
    Spearman's rho of K over the matched pairs, and the median matched cosine (how far the atoms agree)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.stats import spearmanr

    def unit(m: np.ndarray) -> np.ndarray:
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    cos = unit(atoms) @ unit(atoms2).T
    rows, cols = linear_sum_assignment(-cos)
    ok = np.isfinite(k_feat[rows]) & np.isfinite(k_feat2[cols])
    rho = float(spearmanr(k_feat[rows][ok], k_feat2[cols][ok]).statistic) if ok.sum() > 2 else float("nan")
    return {"k_seed_spearman": rho, "atom_match_cosine_median": float(np.median(cos[rows, cols]))}


def compute_vinfo(
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    dict_path: Path_,
    spec: ComplexitySpec,
    out: Path_,
    factors_csv: Path_,
    attrs: dict[str, Any],
    seed: int,
) -> None:
    """I_V of every feature from every layer, complexity K, and the same for the data set's planted factors.

    Identical layers are merged (counted once, with a warning). The dictionary layer itself is one of the
    layers: its I_V is below 1 where a code is a non-linear (non-negative, sparse) function of the activations
    it is computed from; the number of such features (I_V < 0.8) is recorded. With a second-seed dictionary,
    K's agreement across NMF seeds is recorded too (:func:`seed_stability`). One read of the files: the
    identical layers are found in the same pass as the moments (an identical layer's moments are then dropped).
    """
    acts_attrs = store.read_attrs(acts_path, "activations")
    names = (["input"] if spec.vinfo.include_input else []) + list(acts_attrs["layers"])
    dict_layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    dic = store.read_items(dict_path, "complexity-dictionary", ["atoms", "atoms_seed2"])
    second = encoder(torch.from_numpy(dic["atoms_seed2"]), spec) if "atoms_seed2" in dic else None

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
    n = store.shapes(codes_path, "complexity-codes")["codes"][0]
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
            "K across two NMF seeds: Spearman %.3f over matched atoms (median matched cosine %.3f)",
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
    log.info(
        "features: K median %.4f (range %.4f..%.4f), %d constant features, %d poorly readable from %s",
        np.nanmedian(k_feat),
        np.nanmin(k_feat),
        np.nanmax(k_feat),
        int(np.isnan(k_feat).sum()),
        extra["dictionary_layer_unreadable"],
        dict_layer,
    )
    store.write_h5(
        out, "complexity-vinfo", {"iv": iv, "complexity": k_feat}, {**attrs, "layers": list(layers), **extra}
    )


def compute_redundancy(
    codes_path: Path_, acts_path: Path_, layer: str, spec: ComplexitySpec, out: Path_, attrs: dict[str, Any], seed: int
) -> None:
    """Redundancy of every feature under random neuron keep-masks of the dictionary layer, per drop fraction and
    mask seed (``redundancy_seeds`` (P, S, k); ``redundancy`` (P, k) is their mean), and every feature's
    participation ratio over the layer's neurons (:mod:`featflow.metrics.cka` says what each measures)."""
    sources = [(acts_path, "activations", f"layers/{layer}"), (codes_path, "complexity-codes", "codes")]
    moments = CoMoments(*(store.shapes(path, kind)[name][1] for path, kind, name in sources))
    for _, (x, z) in store.iter_rows(sources):
        moments.update(x, z)
    r = spec.redundancy
    per_seed = np.array(
        [
            [cka.masked_redundancy(moments, p, r.masks, np.random.default_rng([seed, s])) for s in range(r.mask_seeds)]
            for p in r.drop
        ]
    )
    red = per_seed.mean(1)
    spread = np.nanmedian(per_seed.std(1), 1) / np.nanstd(red, 1)
    log.info("redundancy median per drop %s: %s", list(r.drop), np.nanmedian(red, 1).round(4))
    log.info("per-feature sd over %d mask seeds / sd over features, per drop: %s", r.mask_seeds, spread.round(3))
    data = {
        "redundancy": red,
        "redundancy_seeds": per_seed,
        "drop": np.asarray(r.drop),
        "participation": cka.participation(moments.xz),
    }
    store.write_h5(out, "complexity-redundancy", data, {**attrs, "masks": r.masks, "mask_seeds": r.mask_seeds})


ROBUST_KIND = "complexity-robustness"
ROBUST_SHARD_KIND = "complexity-robustness-shard"


def _robustness_parts(
    checkpoint: Path_,
    data_path: Path_,
    dict_path: Path_,
    spec: ComplexitySpec,
    pool_mode: str,
    device: torch.device,
    seed: int,
    rows: slice,
) -> dict[str, np.ndarray]:
    """The summed statistics of the robustness of ``rows`` of the evaluated images (they merge across shards):
    :class:`~featflow.metrics.robustness.SensitivityParts`, correct predictions under each noise level and clean,
    images per class; and the rows themselves (``indices`` into the split, concatenated by the merge)."""
    model, _ = load_checkpoint(checkpoint, device)
    layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    dic = encoder(torch.from_numpy(_atoms(dict_path)).to(device), spec)
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
    checkpoint: Path_,
    data_path: Path_,
    dict_path: Path_,
    spec: ComplexitySpec,
    pool_mode: str,
    out: Path_,
    device: torch.device,
    attrs: dict[str, Any],
    seed: int,
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
    n = min(spec.robustness.images, split_size(data_path, spec.split))
    robustness.check_classes(np.bincount(labels_of(data_path, spec.split, slice(0, n))), "complexity.robustness.images")
    rows = slice(*shard_range(n, shards, shard, "complexity.shards"))
    parts = _robustness_parts(checkpoint, data_path, dict_path, spec, pool_mode, device, seed, rows)
    if shards == 1:
        _write_robustness(parts, spec, out, attrs)
    else:
        store.write_h5(out, ROBUST_SHARD_KIND, parts, {**attrs, "shard": shard, "shards": shards})


def merge_robustness(shard_paths: Sequence[Path_], spec: ComplexitySpec, out: Path_, attrs: dict[str, Any]) -> None:
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


def compute_importance(
    checkpoint: Path_, codes_path: Path_, acts_path: Path_, dict_path: Path_, out: Path_, attrs: dict[str, Any]
) -> None:
    """Closed-form gradient x input of every feature with the model's predicted classes (Gamma, signed and
    E|.|), the per-activation importance E[|<d_i, w_c>| | z_i > 0] and the mean code, summed chunk by chunk."""
    model, _ = load_checkpoint(checkpoint, "cpu")
    weight = classifier_head(model).weight.detach().double()
    atoms = torch.from_numpy(_atoms(dict_path)).double()
    sums, n = torch.zeros(5, atoms.shape[0], dtype=torch.float64), 0
    sources = [(codes_path, "complexity-codes", "codes"), (acts_path, "activations", "logits")]
    for _, (z, logits) in store.iter_rows(sources):
        codes, classes = torch.from_numpy(z).double(), torch.from_numpy(logits.argmax(1))
        means = importance(codes, atoms, weight, classes)
        chunk = (*(m * len(z) for m in means), *active_alignment(codes, atoms, weight, classes), codes.sum(0))
        sums, n = sums + torch.stack(chunk), n + len(z)
    signed, absolute = sums[:2] / n
    arrays = {
        "signed": signed.numpy(),
        "absolute": absolute.numpy(),
        "per_activation": (sums[2] / sums[3]).numpy(),  # 0 / 0 = NaN for a feature never active
        "mean_code": (sums[4] / n).numpy(),
    }
    log.info("importance: %d inhibitors of %d features", int((signed < 0).sum()), signed.shape[0])
    store.write_h5(out, "complexity-importance", arrays, attrs)
