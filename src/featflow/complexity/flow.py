"""Feature flow through residual connections (Fel et al. 2024, seed 000 Sec. 4, "Feature Flow").

The paper's claim: simple features are carried by the skip connections nearly unchanged, complex features are
built by the main branches block by block. For every residual block b (``out_b = relu(main_b(x) + skip_b(x))``,
:mod:`featflow.models.residual`) and every dictionary feature z_i (its codes on the complexity split), this
stage measures how much of z_i each path carries: the V-information I_V(skip_b -> z_i) and I_V(main_b -> z_i)
(the complexity branch's estimator: held-out R^2 of a ridge regression on the fixed split of ``vinfo``, clipped
to [0, 1]), the same for the block's output, and linear CKA(path, z_i) on all rows (the paper's first version).
Each path is pooled as the experiment's activations were.

One pass over the split: the images are pushed through the network batch by batch (the model's preprocessing,
in the rows' order), and each path's centered moments with the targets are accumulated for the fit rows and the
held-out rows (:meth:`featflow.metrics.moments.CoMoments.update`), so memory does not grow with the number of
images; R^2 (:func:`featflow.metrics.vinfo.held_out_r2`) and CKA (:func:`featflow.metrics.cka.masked_cka`) come
from the moments. A block that is also an extracted layer of the experiment is checked against its stored
activations, so codes and images can never be silently misaligned.

Named choice: the *skip share* of a feature is sum_b I_V(skip_b) / sum_b (I_V(skip_b) + I_V(main_b)), the
fraction of the information the two paths carry into the blocks that arrives by the skips (NaN when neither
carries any); the paper shows curves, no single number. Its Spearman rho with K states the claim as a number
(the paper: negative, simple features ride the skips). Since information does not add up (both paths of a block
may decode a simple feature almost perfectly), the *block gain* sum_b (I_V(out_b) - I_V(skip_b)), what the blocks
add to what their skips carry in, is recorded beside it. Written (kind ``complexity-flow``): ``iv`` and ``cka``
(3, B, k) over paths (skip, main, out) x blocks x features, the same for the planted factors (``factor_iv``,
``factor_cka``, (3, B, F)), ``skip_share``, ``skip_share_cka``, ``block_gain``, ``complexity``; the table
``flow.csv`` (a row per feature and per planted factor) and the figure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from featflow import store
from featflow.activations import loader_workers
from featflow.complexity.spec import ComplexitySpec
from featflow.config import ActivationsSpec, ModelSpec
from featflow.data import batches, describe
from featflow.metrics import vinfo
from featflow.metrics.cka import masked_cka
from featflow.metrics.moments import CoMoments
from featflow.metrics.stats import Rho, deciles, spearman_ci
from featflow.models import load_checkpoint
from featflow.models.residual import PATHS, ResidualBlock, capture_paths, select_blocks
from featflow.models.weights import preprocessing

log = logging.getLogger(__name__)

KIND = "complexity-flow"
Path_ = str | Path
PAPER = "simple features ride the skip connections nearly unchanged, complex ones are built by the main branches"


def skip_share(skip: np.ndarray, main: np.ndarray) -> np.ndarray:
    """(B, k) per-block information of the skip and main paths -> (k,) the skip paths' share of their sum."""
    total = skip.sum(0) + main.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, skip.sum(0) / total, np.nan)


def block_gain(skip: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(B, k) information of the skip paths and of the blocks' outputs -> (k,) what the blocks add to what their
    skips carry in, summed over blocks: small for a feature carried through unchanged, large for one built."""
    return (out - skip).sum(0)


def _check_rows(acts_path: Path_, n_codes: int) -> slice:
    """The split's rows behind the codes: the activations file's ``indices``, one contiguous run in order."""
    indices = store.read_items(acts_path, "activations", ["indices"])["indices"]
    if indices.shape[0] != n_codes:
        raise store.StoreError(f"{acts_path}: {indices.shape[0]} rows for the {n_codes} codes; rerun the codes rule")
    start = int(indices[0]) if n_codes else 0
    if not np.array_equal(indices, np.arange(start, start + n_codes)):
        raise store.StoreError(f"{acts_path}: its rows are not one contiguous run of the split; re-extract it")
    return slice(start, start + n_codes)


def path_moments(
    model: torch.nn.Module,
    blocks: Sequence[ResidualBlock],
    images: Any,
    targets: Any,
    fit: np.ndarray,
    pool_mode: str,
    device: torch.device,
    stored: Any = None,
) -> tuple[dict[str, CoMoments], dict[str, CoMoments], float]:
    """Moments of every path (``{block}/{path}``) with the targets over the fit rows and the held-out rows.

    ``images`` yields image batches in row order, ``targets(start, stop)`` the (m, T) targets of those rows, ``fit``
    is the boolean (n,) mask of the fit rows; ``stored(start, stop)`` (optional) the stored activations of the
    blocks that are extracted layers (``{block: (m, d)}``), compared with each block's output. Returns the fit
    and held-out moments and the largest relative deviation from the stored activations (0 without any).
    """
    fits: dict[str, CoMoments] = {}
    helds: dict[str, CoMoments] = {}
    deviation, start = 0.0, 0
    with torch.no_grad(), capture_paths(model, blocks, pool_mode) as outputs:
        for x in images:
            model(x.to(device))
            stop = start + x.shape[0]
            z, rows = targets(start, stop), fit[start:stop]
            for key, value in outputs.items():
                value = value.double().cpu().numpy()
                fits.setdefault(key, CoMoments(value.shape[1], z.shape[1])).update(value[rows], z[rows])
                helds.setdefault(key, CoMoments(value.shape[1], z.shape[1])).update(value[~rows], z[~rows])
            for name, layer in (stored(start, stop) if stored else {}).items():
                ours = outputs[f"{name}/out"].double().cpu().numpy()
                scale = max(float(np.abs(layer).max(initial=0.0)), 1e-12)
                deviation = max(deviation, float(np.abs(ours - layer).max(initial=0.0)) / scale)
            start = stop
    if start != fit.shape[0]:
        raise store.StoreError(f"feature flow: {start} images for {fit.shape[0]} rows of codes")
    return fits, helds, deviation


def path_information(
    fits: dict[str, CoMoments], helds: dict[str, CoMoments], blocks: Sequence[ResidualBlock], ridge_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """(I_V, CKA), each (3, B, T) over paths (:data:`PATHS`) x blocks x targets: I_V the held-out R^2 clipped to
    [0, 1], CKA on all rows (the fit and held-out moments merged)."""
    iv = np.empty((len(PATHS), len(blocks), next(iter(fits.values())).mean_z.size))
    cka = np.empty_like(iv)
    for p, path in enumerate(PATHS):
        for b, block in enumerate(blocks):
            fit, held = fits[f"{block.name}/{path}"], helds[f"{block.name}/{path}"]
            iv[p, b] = np.clip(vinfo.held_out_r2(fit, held, ridge_scale), 0.0, 1.0)
            every = CoMoments(fit.mean_x.size, fit.mean_z.size)
            every.merge(fit)
            every.merge(held)
            cka[p, b] = masked_cka(every.xx, every.xz, every.zz)[0]
    return iv, cka


def _table(
    names: Sequence[str], kind: str, k: np.ndarray, iv: np.ndarray, cka: np.ndarray, blocks: Sequence[ResidualBlock]
) -> pd.DataFrame:
    """Rows of the flow table: per target its K, skip shares and per-block I_V of each path."""
    table = pd.DataFrame(
        {
            "target": list(names),
            "kind": kind,
            "complexity": k,
            "skip_share": skip_share(iv[0], iv[1]),
            "skip_share_cka": skip_share(cka[0], cka[1]),
            "block_gain": block_gain(iv[0], iv[2]),
        }
    )
    for p, path in enumerate(PATHS):
        for b, block in enumerate(blocks):
            table[f"iv_{path}_{block.name}"] = iv[p, b]
    return table


def factor_complexity(factors_csv: Path_, names: Sequence[str]) -> np.ndarray:
    """K of the planted factors from the complexity stage's ``factors.csv`` (NaN for a factor it lacks)."""
    frame = store.read_table(factors_csv).set_index("factor")["complexity"] if names else pd.Series(dtype=float)
    return np.array([float(frame.get(name, np.nan)) for name in names])


def _figure_numbers(table: pd.DataFrame, rho: Rho, rho_cka: Rho, blocks: Sequence[ResidualBlock]) -> dict[str, str]:
    feats, facts = table[table.kind == "feature"], table[table.kind == "factor"]
    simple, complex_ = deciles(feats.complexity.to_numpy())

    def by_decile(column: str) -> str:
        values = feats[column].to_numpy()
        return f"simplest 10% {np.nanmedian(values[simple]):.3f}, most complex 10% {np.nanmedian(values[complex_]):.3f}"

    def of_factors(column: str) -> str:
        return ", ".join(f"{row.target} {getattr(row, column):.3f}" for row in facts.itertuples()) or "none"

    return {
        "rho(K, skip share), I_V": f"{rho} (paper: negative, {PAPER})",
        "rho(K, skip share), CKA": str(rho_cka),
        "median skip share (I_V)": by_decile("skip_share"),
        "median skip share (CKA)": by_decile("skip_share_cka"),
        "median I_V the blocks add over their skips (sum over blocks)": by_decile("block_gain"),
        "planted factors' skip share (I_V / CKA)": f"{of_factors('skip_share')} / {of_factors('skip_share_cka')}",
        "planted factors' block gain": of_factors("block_gain"),
        "blocks": ", ".join(f"{b.name} ({'identity' if b.identity else 'projected'} skip)" for b in blocks),
    }


def run_flow(
    spec: ComplexitySpec,
    acts_spec: ActivationsSpec,
    checkpoint: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    vinfo_path: Path_,
    factors_csv: Path_,
    out: Path_,
    table_csv: Path_,
    figure: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
    threads: int = 1,
) -> None:
    """I_V and CKA of every feature and planted factor from each residual block's skip and main paths; the file,
    the table and the figure (:mod:`featflow.plots.flow`)."""
    from featflow.plots.flow import flow_figure

    model, payload = load_checkpoint(checkpoint, device)
    blocks = select_blocks(model, spec.flow.blocks)
    n, k_atoms = store.shapes(codes_path, "complexity-codes")["codes"]
    k = store.read_items(vinfo_path, "complexity-vinfo", ["complexity"])["complexity"]
    if k.shape[0] != k_atoms:
        raise store.StoreError(f"{vinfo_path}: K of {k.shape[0]} features for {k_atoms} codes; rerun complexity")
    rows = _check_rows(acts_path, n)
    acts_attrs = store.read_attrs(acts_path, "activations")
    factor_names = list(acts_attrs.get("factor_names", []))
    checked = [block.name for block in blocks if block.name in acts_attrs["layers"]]
    fit = np.zeros(n, bool)
    fit[vinfo.split_indices(n, spec.vinfo.test_fraction, seed)[0]] = True
    preprocess = preprocessing(ModelSpec.from_dict(payload["spec"]), describe(data_path)[0][-1])
    stream = batches(data_path, spec.split, acts_spec.batch_size, rows, loader_workers(acts_spec, threads), preprocess)
    with store.h5_reader(codes_path, "complexity-codes") as codes, store.h5_reader(acts_path, "activations") as acts:

        def targets(start: int, stop: int) -> np.ndarray:
            parts = [codes["codes"][start:stop]] + ([acts["factors"][start:stop]] if factor_names else [])
            return np.concatenate([np.asarray(part, np.float64) for part in parts], 1)

        def stored(start: int, stop: int) -> dict[str, np.ndarray]:
            return {name: acts[f"layers/{name}"][start:stop] for name in checked}

        images = (batch.x for batch in tqdm(stream, total=-(-n // acts_spec.batch_size), desc="flow", unit="batch"))
        fits, helds, deviation = path_moments(model, blocks, images, targets, fit, acts_spec.pool, device, stored)
    if deviation > 1e-3:
        raise store.StoreError(
            f"feature flow: block outputs {checked} differ from {acts_path} by {deviation:.2g} (relative): the "
            "checkpoint, data or activations do not belong together; rerun the activations and codes rules"
        )
    iv, cka = path_information(fits, helds, blocks, spec.vinfo.ridge_scale)
    feats, facts = slice(0, k_atoms), slice(k_atoms, None)
    f_k = factor_complexity(factors_csv, factor_names)
    table = pd.concat(
        [
            _table([str(i) for i in range(k_atoms)], "feature", k, iv[..., feats], cka[..., feats], blocks),
            _table(factor_names, "factor", f_k, iv[..., facts], cka[..., facts], blocks),
        ],
        ignore_index=True,
    )
    store.write_table(table, table_csv)
    share, share_cka = table.skip_share.to_numpy()[:k_atoms], table.skip_share_cka.to_numpy()[:k_atoms]
    rho, rho_cka = spearman_ci(k, share, seed=seed), spearman_ci(k, share_cka, seed=seed)
    numbers = _figure_numbers(table, rho, rho_cka, blocks)
    log.info("feature flow: %s; block outputs equal the stored activations to %.1e", numbers, deviation)
    store.write_h5(
        out,
        KIND,
        {
            "iv": iv[..., feats],
            "cka": cka[..., feats],
            "factor_iv": iv[..., facts],
            "factor_cka": cka[..., facts],
            "skip_share": share,
            "skip_share_cka": share_cka,
            "block_gain": table.block_gain.to_numpy()[:k_atoms],
            "complexity": k,
        },
        {
            **attrs,
            "paths": list(PATHS),
            "blocks": [block.name for block in blocks],
            "identity_skip": [block.identity for block in blocks],
            "factor_names": factor_names,
            "pool": acts_spec.pool,
            "split": spec.split,
            "spearman_k_skip_share": rho.rho,
            "spearman_k_skip_share_cka": rho_cka.rho,
            "stored_deviation": deviation,
        },
    )
    fig = flow_figure([block.name for block in blocks], iv[..., feats], cka[..., feats], k, table, rho, rho_cka)
    store.save_figure(fig, figure, numbers)
