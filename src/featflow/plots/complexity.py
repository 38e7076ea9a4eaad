"""Figures of the complexity branch (SPEC 1.7); each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from scipy.stats import linregress, spearmanr


def complexity_vs_importance(table: pd.DataFrame) -> Figure:
    """Scatter of complexity against |importance| with a least-squares line and Spearman's rho."""
    t = table[["complexity", "importance_abs"]].dropna()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(t["complexity"], t["importance_abs"], s=12, alpha=0.7)
    if len(t) > 2 and t["complexity"].nunique() > 1:
        fit = linregress(t["complexity"], t["importance_abs"])
        xs = np.linspace(t["complexity"].min(), t["complexity"].max(), 50)
        ax.plot(xs, fit.intercept + fit.slope * xs, color="C3")
        rho = spearmanr(t["complexity"], t["importance_abs"]).statistic
        ax.set_title(f"Spearman rho = {rho:.3f} (n = {len(t)})")
    ax.set_xlabel("complexity K")
    ax.set_ylabel("importance E|z <d, w_c>|")
    fig.tight_layout()
    return fig


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
    ax.set_ylabel("I_V (held-out R^2)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    return fig


def atom_map(atoms: np.ndarray, complexity: np.ndarray, n_neighbors: int, seed: int) -> Figure:
    """UMAP of the atoms (cosine) colored by complexity, HDBSCAN clusters of the embedding outlined."""
    import umap
    from sklearn.cluster import HDBSCAN

    alive = np.linalg.norm(atoms, axis=1) > 0
    emb = umap.UMAP(
        n_neighbors=min(n_neighbors, int(alive.sum()) - 1), metric="cosine", random_state=seed
    ).fit_transform(atoms[alive])
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
    ax.set_title(f"UMAP of {int(alive.sum())} atoms, {labels.max() + 1} HDBSCAN clusters (outlines)")
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
