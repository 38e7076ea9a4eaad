"""Figures of the complexity branch (SPEC 1.7); each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from sklearn.isotonic import IsotonicRegression

from featflow.metrics.stats import Rho, spearman_ci


def complexity_vs_importance(table: pd.DataFrame) -> tuple[Figure, Rho]:
    """Scatter of complexity against |importance|, an isotonic fit (monotone in the direction of rho, never
    below the data's range, unlike a straight line) and Spearman's rho with its bootstrap 95% interval."""
    t = table[["complexity", "importance_abs"]].dropna()
    rho = spearman_ci(t["complexity"], t["importance_abs"])
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    ax.scatter(t["complexity"], t["importance_abs"], s=12, alpha=0.7)
    if len(t) > 2 and np.isfinite(rho.rho):
        fit = IsotonicRegression(increasing=rho.rho > 0).fit(t["complexity"], t["importance_abs"])
        xs = np.sort(t["complexity"].to_numpy())
        ax.plot(xs, fit.predict(xs), color="C3", label="isotonic fit")
        ax.legend(fontsize=8)
    ax.set_title(f"Spearman rho {rho}", fontsize=9)
    ax.set_xlabel("complexity K")
    ax.set_ylabel("importance E|z <d, w_c>|")
    fig.tight_layout()
    return fig, rho


def iv_curves(table: pd.DataFrame, layers: list[str]) -> Figure:
    """Mean per-layer I_V (with the interdecile band) of the simplest and the most complex decile."""
    t = table.dropna(subset=["complexity"])
    lo, hi = t["complexity"].quantile([0.1, 0.9])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, rows, color in (
        ("simplest 10%", t[t["complexity"] <= lo], "C0"),
        ("most complex 10%", t[t["complexity"] >= hi], "C3"),
    ):
        iv = rows[[f"iv_{name}" for name in layers]].to_numpy()
        ax.plot(layers, iv.mean(0), marker="o", color=color, label=f"{label} (n = {len(rows)})")
        ax.fill_between(range(len(layers)), *np.quantile(iv, [0.1, 0.9], axis=0), color=color, alpha=0.2)
    ax.set_xlabel("layer (depth order; input = the average-pooled image)")
    ax.set_ylabel("I_V (held-out R^2)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    return fig


def relations(
    table: pd.DataFrame, sigmas: np.ndarray, accuracy: np.ndarray, at_chance: np.ndarray, units: str
) -> tuple[Figure, dict[str, Rho]]:
    """Fel et al.'s Figs. 10-11 and the inhibitors: redundancy, sensitivity (unflagged sigmas only) and signed
    importance against K, each with Spearman's rho and its bootstrap 95% interval; accuracy under noise per
    sigma (a sigma at chance is marked and left out)."""
    k = table["complexity"].to_numpy()
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    rhos: dict[str, Rho] = {}
    for column in [c for c in table.columns if c.startswith("redundancy_p")]:
        rhos[column] = spearman_ci(k, table[column])
        axes[0].scatter(k, table[column], s=10, alpha=0.7, label=f"{column}: rho {rhos[column]}")
    axes[0].set(xlabel="complexity K", ylabel="redundancy", title="redundancy vs K (paper: negative rho)")
    axes[0].legend(fontsize=6)
    for i, (sigma, bad) in enumerate(zip(sigmas, at_chance, strict=True)):
        column = f"sensitivity_s{sigma:g}"
        if bad:
            continue
        rhos[column] = spearman_ci(k, table[column])
        axes[1].scatter(k, table[column], s=10, alpha=0.7, color=f"C{i}", label=f"sigma {sigma:g}: rho {rhos[column]}")
    left_out = ", ".join(f"{s:g}" for s, bad in zip(sigmas, at_chance, strict=True) if bad)
    axes[1].set_yscale("log")
    axes[1].set(xlabel="complexity K", ylabel="sensitivity (noise var / clean var)")
    axes[1].set_title(
        "sensitivity vs K (paper: positive rho)"
        + (f"\nleft out, accuracy at chance: sigma {left_out}" if left_out else ""),
        fontsize=9,
    )
    axes[1].legend(fontsize=6)
    axes[2].plot(sigmas, accuracy, marker="o")
    axes[2].scatter(sigmas[at_chance], accuracy[at_chance], color="red", zorder=3, label="at chance (left out)")
    axes[2].set_xscale("log")
    axes[2].set(xlabel=f"noise sigma ({units} units)", ylabel="accuracy under noise", ylim=(0, 1.02))
    axes[2].set_title("accuracy under the sensitivity's noise", fontsize=9)
    if at_chance.any():
        axes[2].legend(fontsize=7)
    signed = table["importance"].to_numpy()
    inhibitor = signed < 0
    rhos["importance"] = spearman_ci(k, signed)
    axes[3].scatter(k[~inhibitor], signed[~inhibitor], s=10, alpha=0.7, label="Gamma >= 0")
    axes[3].scatter(
        k[inhibitor], signed[inhibitor], s=14, color="C3", label=f"inhibitors (Gamma < 0): {int(inhibitor.sum())}"
    )
    axes[3].axhline(0, color="black", linewidth=0.5)
    axes[3].set(xlabel="complexity K", ylabel="signed importance Gamma")
    axes[3].set_title(f"signed importance vs K: rho {rhos['importance']}", fontsize=8)
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return fig, rhos


UMAP_MIN_ATOMS = 1000  # below this many atoms the map is the spectral embedding (no numba compile)


def embed_atoms(atoms: np.ndarray, n_neighbors: int, seed: int, method: str = "auto") -> tuple[np.ndarray, str]:
    """2-D map of unit-normalized atoms on their cosine k-nearest-neighbour graph; returns (embedding, name).

    ``umap``: umap-learn (cosine metric). ``spectral``: scikit-learn's Laplacian eigenmap of the kNN graph (on
    unit vectors the euclidean neighbours are the cosine ones), which is UMAP's own initialization of the layout.
    ``auto`` (the stage's choice): spectral below :data:`UMAP_MIN_ATOMS` atoms, UMAP above. Reason: umap-learn's
    kernels are numba functions without an on-disk cache, so every fresh job pays ~15-25 s of compilation
    (plus ~3-11 s importing pynndescent) to lay out a few hundred points, which the spectral map does in 0.1 s.
    """
    if method not in ("auto", "umap", "spectral"):
        raise ValueError(f"atom map: method '{method}', expected auto, umap or spectral")
    n = atoms.shape[0]
    neighbors = max(2, min(n_neighbors, n - 1))
    if method == "umap" or (method == "auto" and n >= UMAP_MIN_ATOMS):
        import umap

        return umap.UMAP(n_neighbors=neighbors, metric="cosine", random_state=seed).fit_transform(atoms), "UMAP"
    from sklearn.manifold import SpectralEmbedding

    unit = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    emb = SpectralEmbedding(
        n_components=2, affinity="nearest_neighbors", n_neighbors=neighbors, random_state=seed
    ).fit_transform(unit)
    return emb, "spectral embedding"


def atom_map(atoms: np.ndarray, complexity: np.ndarray, n_neighbors: int, seed: int, method: str = "auto") -> Figure:
    """Map of the atoms (cosine kNN graph; UMAP or, for few atoms, its spectral initialization, see
    :func:`embed_atoms`) colored by complexity, HDBSCAN clusters of the embedding outlined."""
    from sklearn.cluster import HDBSCAN

    alive = np.linalg.norm(atoms, axis=1) > 0
    emb, name = embed_atoms(atoms[alive], n_neighbors, seed, method)
    labels = HDBSCAN(min_cluster_size=5, copy=True).fit_predict(emb)
    fig, ax = plt.subplots(figsize=(5, 4))
    points = ax.scatter(
        emb[:, 0],
        emb[:, 1],
        c=complexity[alive],
        cmap="viridis",
        s=25,
        edgecolors=[f"C{c % 10}" if c >= 0 else "none" for c in labels],
        linewidths=1.2,
    )
    fig.colorbar(points, ax=ax, label="complexity K")
    ax.set_title(f"{name} of {int(alive.sum())} atoms, {labels.max() + 1} HDBSCAN clusters (outlines)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def top_images(images: np.ndarray, codes: np.ndarray, complexity: np.ndarray, n_features: int, n_images: int) -> Figure:
    """Top-activating images of the ``n_features`` simplest (top rows) and most complex (bottom rows) features.

    images : (n, C, H, W) in [0, 1].  codes : (n, k).  complexity : (k,).
    """
    order = np.argsort(np.where(np.isnan(complexity), np.inf, complexity))
    valid = order[: int(np.isfinite(complexity).sum())]
    chosen = list(valid[:n_features]) + list(valid[::-1][:n_features])
    fig, axes = plt.subplots(len(chosen), n_images, figsize=(n_images * 0.9, len(chosen) * 0.95), squeeze=False)
    for row, feat in enumerate(chosen):
        top = np.argsort(-codes[:, feat])[:n_images]
        for col, idx in enumerate(top):
            ax = axes[row, col]
            ax.imshow(np.clip(images[idx].transpose(1, 2, 0), 0, 1).squeeze())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"#{feat}\nK={complexity[feat]:.2f}", fontsize=7)
    fig.suptitle("simplest (top) and most complex (bottom) features", fontsize=9)
    fig.tight_layout()
    return fig
