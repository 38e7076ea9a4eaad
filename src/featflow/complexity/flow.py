"""Feature flow through residual connections (Fel et al. 2024, seed 000 Sec. 4, "Feature Flow").

The paper's claim: simple features are carried by the skip connections nearly unchanged, complex features are
built by the main branches block by block. For every residual block b (``out_b = relu(main_b(x) + skip_b(x))``,
:mod:`featflow.models.residual`) and every dictionary feature z_i (its codes on the complexity split), this
stage measures two things.

*Code retention under main-branch ablation* (the intervention that tests the claim): with block b's main branch
replaced by zeros (:func:`featflow.models.residual.main_zeroed`: only the skip passes), the dictionary's layer is
recomputed for every image and re-encoded by the same dictionary as the complexity branch's codes (as
:func:`featflow.dictionary.files.read` rebuilds it); the retention of z_i at block b is Pearson's correlation
over the images between its stored codes and these ablated codes. Named choices: a feature whose stored code
is constant has no retention (NaN); one whose ablated code is constant (its variance below 1e-12 of the stored
code's) keeps nothing of it (0). Retention near 1 means the feature survives without the block's
main branch (it rides the skip); near 0 that the block builds it. rho(K, retention) per block, with its
bootstrap CI, states the claim as a number (the paper: negative); the claim registry reads rho(K, mean
retention over blocks).

*What each path carries*: the V-information I_V(skip_b -> z_i) and I_V(main_b -> z_i) (the complexity branch's
estimator: held-out R^2 of a ridge regression on the fixed split of ``vinfo``, clipped to [0, 1]), the same for
the block's output, and linear CKA(path, z_i) on all rows (the paper's first version); each path pooled as the
experiment's activations were. The *skip share* sum_b I_V(skip_b) / sum_b (I_V(skip_b) + I_V(main_b)) measures
how decodable z_i is from the skips relative to both paths, not what the block uses: information does not add
up, both paths of a block decode a simple feature almost perfectly, so the share sits near 0.5 for every feature
and its rank correlation with K mostly restates how decodable z_i is at all; rho(K, mean_b I_V(skip_b)) is
recorded beside it to show this. The *block gain* sum_b (I_V(out_b) - I_V(skip_b)), what the blocks add to what
their skips carry in, is recorded for every feature and planted factor.

Two streaming passes over the split (the model's preprocessing, in the rows' order): one accumulates each path's
centered moments with the targets for the fit rows and the held-out rows
(:meth:`featflow.metrics.moments.CoMoments.update`, in place: a batch costs its products, whatever its size),
the other, per block, the paired moments of stored and ablated codes (:class:`PairedColumns`); memory does not
grow with the number of images. A block that is also an extracted layer of the experiment is checked against its
stored activations, so codes and images can never be silently misaligned. Written (kind ``complexity-flow``):
``retention`` (B, k), ``iv`` and ``cka`` (3, B, k) over paths (skip, main, out) x blocks x features, the same for
the planted factors (``factor_iv``, ``factor_cka``, (3, B, F); the factors have no codes, so no retention),
``skip_share``, ``skip_share_cka``, ``block_gain``, ``complexity``; the table ``flow.csv`` (a row per feature and
per planted factor) and the figure.
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
from featflow.activations import loader_workers, pool
from featflow.complexity.spec import ComplexitySpec
from featflow.config import ActivationsSpec, ModelSpec
from featflow.data import batches, describe
from featflow.metrics import vinfo
from featflow.metrics.cka import masked_cka
from featflow.metrics.moments import CoMoments
from featflow.metrics.stats import Rho, deciles, spearman_ci
from featflow.models import forward_to, load_checkpoint
from featflow.models.residual import PATHS, ResidualBlock, capture_paths, main_zeroed, select_blocks
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


class PairedColumns:
    """Count, per-column means and centered sums of squares and products of paired (m, k) arrays a and b,
    streamed with the pairwise update of Chan, Golub & LeVeque (each chunk's own centered sums merged, O(m k) per
    chunk), but only the k paired columns: memory O(k) at any dictionary size."""

    def __init__(self, k: int) -> None:
        self.n = 0
        self.mean_a, self.mean_b = np.zeros(k), np.zeros(k)
        self.aa, self.bb, self.ab = np.zeros(k), np.zeros(k), np.zeros(k)

    def update(self, a: np.ndarray, b: np.ndarray) -> None:
        """Add the rows of ``a`` and ``b`` (m, k)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        m = a.shape[0]
        if not m:
            return
        mean_a, mean_b = a.mean(0), b.mean(0)
        ac, bc = a - mean_a, b - mean_b
        total = self.n + m
        da, db, weight = mean_a - self.mean_a, mean_b - self.mean_b, self.n * m / total
        self.aa = self.aa + np.einsum("ij,ij->j", ac, ac) + weight * da * da
        self.bb = self.bb + np.einsum("ij,ij->j", bc, bc) + weight * db * db
        self.ab = self.ab + np.einsum("ij,ij->j", ac, bc) + weight * da * db
        self.mean_a, self.mean_b, self.n = self.mean_a + da * (m / total), self.mean_b + db * (m / total), total

    def correlation(self) -> np.ndarray:
        """(k,) Pearson's r of each column pair: NaN where a is constant, 0 where b is (nothing of a kept)."""
        kept = self.bb > 1e-12 * self.aa
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(kept, self.ab / np.sqrt(self.aa * np.where(kept, self.bb, 1.0)), 0.0)
        return np.where(self.aa > 0, r, np.nan)


def code_retention(
    model: torch.nn.Module,
    blocks: Sequence[ResidualBlock],
    images: Any,
    codes: Any,
    layer: str,
    pool_mode: str,
    encode: Any,
    device: torch.device,
) -> np.ndarray:
    """(B, k) retention of every feature under each block's main-branch ablation: Pearson's r over the images
    between the stored codes and the codes of the dictionary's layer recomputed with the block's main branch
    zeroed (:class:`PairedColumns`).

    ``images`` yields image batches in row order, ``codes(start, stop)`` the stored (m, k) codes of those rows,
    ``encode`` maps (m, d) pooled activations of ``layer`` to (m, k) codes (the complexity branch's encoder).
    """
    pairs: list[PairedColumns] = []
    start = 0
    with torch.no_grad():
        for x in images:
            x = x.to(device)
            stop = start + x.shape[0]
            stored = codes(start, stop)
            for b, block in enumerate(blocks):
                with main_zeroed(model, block):
                    ablated = encode(pool(forward_to(model, x, layer), pool_mode).float())
                if len(pairs) <= b:
                    pairs.append(PairedColumns(stored.shape[1]))
                pairs[b].update(stored, ablated.double().cpu().numpy())
            start = stop
    return np.stack([pair.correlation() for pair in pairs]) if pairs else np.empty((0, 0))


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
                value = value.cpu().numpy()  # float32: CoMoments casts in its shift
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
    names: Sequence[str],
    kind: str,
    k: np.ndarray,
    iv: np.ndarray,
    cka: np.ndarray,
    retention: np.ndarray,
    blocks: Sequence[ResidualBlock],
) -> pd.DataFrame:
    """Rows of the flow table: per target its K, code retention per block and its mean, skip shares, block
    gain and per-block I_V of each path."""
    table = pd.DataFrame(
        {
            "target": list(names),
            "kind": kind,
            "complexity": k,
            "retention_mean": retention.mean(0),
            "skip_share": skip_share(iv[0], iv[1]),
            "skip_share_cka": skip_share(cka[0], cka[1]),
            "block_gain": block_gain(iv[0], iv[2]),
        }
    )
    for b, block in enumerate(blocks):
        table[f"retention_{block.name}"] = retention[b]
    for p, path in enumerate(PATHS):
        for b, block in enumerate(blocks):
            table[f"iv_{path}_{block.name}"] = iv[p, b]
    return table


def factor_complexity(factors_csv: Path_, names: Sequence[str]) -> np.ndarray:
    """K of the planted factors from the complexity stage's ``factors.csv`` (NaN for a factor it lacks)."""
    frame = store.read_table(factors_csv).set_index("factor")["complexity"] if names else pd.Series(dtype=float)
    return np.array([float(frame.get(name, np.nan)) for name in names])


def retention_rhos(k: np.ndarray, retention: np.ndarray, seed: int) -> list[Rho]:
    """Spearman's rho(K, retention) with its bootstrap CI for each block (rows of ``retention``), then for the
    mean retention over blocks (the claim's number)."""
    return [spearman_ci(k, r, seed=seed) for r in (*retention, retention.mean(0))]


def _figure_numbers(
    table: pd.DataFrame, rhos: dict[str, Rho], retention_rho: Sequence[Rho], blocks: Sequence[ResidualBlock]
) -> dict[str, str]:
    feats, facts = table[table.kind == "feature"], table[table.kind == "factor"]
    simple, complex_ = deciles(feats.complexity.to_numpy())

    def by_decile(column: str) -> str:
        values = feats[column].to_numpy()
        return f"simplest 10% {np.nanmedian(values[simple]):.3f}, most complex 10% {np.nanmedian(values[complex_]):.3f}"

    def of_factors(column: str) -> str:
        return ", ".join(f"{row.target} {getattr(row, column):.3f}" for row in facts.itertuples()) or "none"

    names = [block.name for block in blocks]
    per_block = "; ".join(f"{name} {rho}" for name, rho in zip(names, retention_rho, strict=False))
    return {
        "rho(K, code retention) under main-branch ablation, mean over blocks": f"{retention_rho[-1]} (paper: "
        f"negative, {PAPER})",
        "rho(K, code retention) per block": per_block,
        **{f"median code retention without {name}'s main branch": by_decile(f"retention_{name}") for name in names},
        "rho(K, skip share), I_V": f"{rhos['share']} (decodability from the skips relative to both paths)",
        "rho(K, mean I_V of the skip paths)": f"{rhos['skip_iv']} (how much of the skip share's rho is K itself)",
        "rho(K, skip share), CKA": str(rhos["share_cka"]),
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
    *,
    checkpoint: Path_,
    dict_path: Path_,
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
    """Code retention of every feature under each residual block's main-branch ablation; I_V and CKA of every
    feature and planted factor from each block's skip and main paths; the file, the table and the figure
    (:mod:`featflow.plots.flow`)."""
    from featflow.dictionary import files
    from featflow.plots.flow import flow_figure

    model, payload = load_checkpoint(checkpoint, device)
    blocks = select_blocks(model, spec.flow.blocks)
    n, k_atoms = store.shapes(codes_path, "complexity-codes")["codes"]
    k = store.read_items(vinfo_path, "complexity-vinfo", ["complexity"])["complexity"]
    if k.shape[0] != k_atoms:
        raise store.StoreError(f"{vinfo_path}: K of {k.shape[0]} features for {k_atoms} codes; rerun complexity")
    layer = store.read_attrs(dict_path, "complexity-dictionary")["layer"]
    atoms = torch.from_numpy(store.read_items(dict_path, "complexity-dictionary", ["atoms"])["atoms"])
    if atoms.shape[0] != k_atoms:
        raise store.StoreError(f"{dict_path}: {atoms.shape[0]} atoms for {k_atoms} codes; rerun the codes rule")
    rows = _check_rows(acts_path, n)
    acts_attrs = store.read_attrs(acts_path, "activations")
    factor_names = list(acts_attrs.get("factor_names", []))
    checked = [block.name for block in blocks if block.name in acts_attrs["layers"]]
    fit = np.zeros(n, bool)
    fit[vinfo.split_indices(n, spec.vinfo.test_fraction, seed)[0]] = True
    preprocess = preprocessing(ModelSpec.from_dict(payload["spec"]), describe(data_path)[0][-1])
    workers = loader_workers(acts_spec, threads)

    def images(desc: str) -> Any:
        stream = batches(data_path, spec.split, acts_spec.batch_size, rows, workers, preprocess)
        return (batch.x for batch in tqdm(stream, total=-(-n // acts_spec.batch_size), desc=desc, unit="batch"))

    with store.h5_reader(codes_path, "complexity-codes") as codes, store.h5_reader(acts_path, "activations") as acts:

        def targets(start: int, stop: int) -> np.ndarray:
            parts = [codes["codes"][start:stop]] + ([acts["factors"][start:stop]] if factor_names else [])
            return np.concatenate([np.asarray(part, np.float64) for part in parts], 1)

        def stored(start: int, stop: int) -> dict[str, np.ndarray]:
            return {name: acts[f"layers/{name}"][start:stop] for name in checked}

        fits, helds, deviation = path_moments(
            model, blocks, images("flow"), targets, fit=fit, pool_mode=acts_spec.pool, device=device, stored=stored
        )
        if deviation > 1e-3:
            raise store.StoreError(
                f"feature flow: block outputs {checked} differ from {acts_path} by {deviation:.2g} (relative): the "
                "checkpoint, data or activations do not belong together; rerun the activations and codes rules"
            )
        encode = files.read(dict_path, spec.dictionary, device).encode
        retention = code_retention(
            model,
            blocks,
            images("ablation"),
            lambda start, stop: np.asarray(codes["codes"][start:stop], np.float64),
            layer=layer,
            pool_mode=acts_spec.pool,
            encode=encode,
            device=device,
        )
    iv, cka = path_information(fits, helds, blocks, spec.vinfo.ridge_scale)
    feats, facts = slice(0, k_atoms), slice(k_atoms, None)
    f_k = factor_complexity(factors_csv, factor_names)
    no_codes = np.full((len(blocks), len(factor_names)), np.nan)
    table = pd.concat(
        [
            _table(
                [str(i) for i in range(k_atoms)],
                "feature",
                k,
                iv=iv[..., feats],
                cka=cka[..., feats],
                retention=retention,
                blocks=blocks,
            ),
            _table(
                factor_names, "factor", f_k, iv=iv[..., facts], cka=cka[..., facts], retention=no_codes, blocks=blocks
            ),
        ],
        ignore_index=True,
    )
    store.write_table(table, table_csv)
    share, share_cka = table.skip_share.to_numpy()[:k_atoms], table.skip_share_cka.to_numpy()[:k_atoms]
    rhos = {
        "share": spearman_ci(k, share, seed=seed),
        "share_cka": spearman_ci(k, share_cka, seed=seed),
        "skip_iv": spearman_ci(k, iv[0, :, feats].mean(0), seed=seed),
    }
    retention_rho = retention_rhos(k, retention, seed)
    numbers = _figure_numbers(table, rhos, retention_rho, blocks)
    log.info("feature flow: %s; block outputs equal the stored activations to %.1e", numbers, deviation)
    store.write_h5(
        out,
        KIND,
        {
            "retention": retention,
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
            "layer": layer,
            "pool": acts_spec.pool,
            "split": spec.split,
            "spearman_k_retention": [rho.rho for rho in retention_rho[:-1]],
            "spearman_k_retention_mean": retention_rho[-1].rho,
            "spearman_k_skip_share": rhos["share"].rho,
            "spearman_k_skip_share_cka": rhos["share_cka"].rho,
            "spearman_k_skip_iv": rhos["skip_iv"].rho,
            "stored_deviation": deviation,
        },
    )
    names = [block.name for block in blocks]
    fig = flow_figure(
        names,
        iv[..., feats],
        cka[..., feats],
        retention=retention,
        k=k,
        table=table,
        retention_rho=retention_rho,
        share_rho=rhos["share"],
    )
    store.save_figure(fig, figure, numbers)
