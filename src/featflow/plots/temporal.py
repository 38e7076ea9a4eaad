"""Figures of complexity over training (Fel et al. 2024, Figs. 5-6); each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from featflow.metrics.stats import Rho, deciles, spearman_ci


def decoding(
    epochs: np.ndarray,
    curves: np.ndarray,
    k: np.ndarray,
    emerged: np.ndarray,
    factors: pd.DataFrame,
    layer: str,
) -> tuple[Figure, Rho]:
    """(a) I_V from ``layer`` of each checkpoint, mean and interdecile band of the simplest and most complex 10%
    of the final features, with the planted factors dashed; (b) emergence epoch against final K, Spearman's rho."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for label, mask, color in (("simplest 10%", deciles(k)[0], "C0"), ("most complex 10%", deciles(k)[1], "C3")):
        rows = curves[:, mask]
        ax.plot(epochs, np.nanmean(rows, 1), marker="o", color=color, label=f"{label} (n = {int(mask.sum())})")
        ax.fill_between(epochs, *np.nanquantile(rows, [0.1, 0.9], axis=1), color=color, alpha=0.2)
    for j, row in enumerate(factors.itertuples()):
        values = [getattr(row, f"iv_epoch_{int(e)}") for e in epochs]
        ax.plot(epochs, values, ls="--", color=f"C{(j + 4) % 10}", label=f"factor {row.factor}")
    ax.set_xlabel("epoch (last: the final model)")
    ax.set_ylabel(f"I_V from {layer} (held-out R^2)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    rho = spearman_ci(k, emerged)
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, size=k.shape) * np.ptp(epochs) / max(len(epochs), 1)
    bx.scatter(k, emerged + jitter, s=10, alpha=0.6, label="final features")
    if len(factors):
        bx.scatter(factors["complexity"], factors["emergence_epoch"], marker="*", s=120, color="k", label="factors")
        for row in factors.itertuples():
            bx.annotate(
                row.factor,
                (row.complexity, row.emergence_epoch),
                fontsize=7,
                xytext=(4, 4),
                ha="left",
                textcoords="offset points",
            )
    bx.set_xlabel("complexity K (final model)")
    bx.set_ylabel("emergence epoch")
    bx.set_yticks(epochs)
    bx.set_title(f"Spearman rho {rho}", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig, rho


def sedimentation(epochs: np.ndarray, matched: np.ndarray) -> Figure:
    """K over training of the features matched to each final feature (one line each, colored by final K, the last
    row), with the median of the simplest and most complex deciles."""
    k = matched[-1]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    cmap = plt.get_cmap("viridis")
    ok = np.isfinite(k)
    span = (np.nanmin(k), np.nanmax(k)) if ok.any() else (0.0, 1.0)
    for i in np.flatnonzero(ok):
        shade = (k[i] - span[0]) / max(span[1] - span[0], 1e-12)
        ax.plot(epochs, matched[:, i], color=cmap(shade), alpha=0.25, lw=0.8)
    for label, mask, color in (("simplest 10%", deciles(k)[0], "C0"), ("most complex 10%", deciles(k)[1], "C3")):
        ax.plot(epochs, np.nanmedian(matched[:, mask], 1), marker="o", color=color, lw=2, label=f"median, {label}")
    ax.set_xlabel("epoch (last: the final model, same dictionary recipe)")
    ax.set_ylabel("complexity K of the matched feature")
    ax.legend(fontsize=7)
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(*span), cmap=cmap), ax=ax, label="final K")
    fig.tight_layout()
    return fig


def split_medians(importance: np.ndarray, matched: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(E,) medians over epochs of the matched K of the ``top`` most important final features and of the rest."""
    order = np.argsort(-np.nan_to_num(np.asarray(importance, float), nan=-np.inf))
    return np.nanmedian(matched[:, order[:top]], 1), np.nanmedian(matched[:, order[top:]], 1)


def importance(
    epochs: np.ndarray, own_k: np.ndarray, own_importance: np.ndarray, matched: np.ndarray, share: float = 0.1
) -> tuple[Figure, tuple[Rho, Rho], int]:
    """Fel et al. Fig. 6: (a, b) |importance| against K of each dictionary's own features at the first trained
    checkpoint and at the end, Spearman's rho; (c) matched K over training of the ``share`` most important final
    features against the rest (medians, interdecile band). Returns the figure, the two rhos and the top count."""
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.6))
    rhos = []
    for ax, i in zip(axes[:2], (0, -1), strict=True):
        rho = spearman_ci(own_k[i], own_importance[i])
        ax.scatter(own_k[i], own_importance[i], s=10, alpha=0.6)
        ax.set_xlabel(f"complexity K (epoch {int(epochs[i])} dictionary)")
        ax.set_ylabel("|importance| (gradient x input)")
        ax.set_title(f"epoch {int(epochs[i])}: Spearman rho {rho}", fontsize=8)
        rhos.append(rho)
    top = max(1, int(round(share * np.isfinite(own_importance[-1]).sum())))
    order = np.argsort(-np.nan_to_num(own_importance[-1], nan=-np.inf))
    cx = axes[2]
    for label, cols, color in (
        (f"{top} most important", order[:top], "C3"),
        ("the others", order[top:], "C0"),
    ):
        rows = matched[:, cols]
        cx.plot(epochs, np.nanmedian(rows, 1), marker="o", color=color, label=f"median K, {label}")
        cx.fill_between(epochs, *np.nanquantile(rows, [0.1, 0.9], axis=1), color=color, alpha=0.2)
    cx.set_xlabel("epoch (last: the final model)")
    cx.set_ylabel("complexity K of the matched feature")
    cx.legend(fontsize=7)
    fig.tight_layout()
    return fig, (rhos[0], rhos[1]), top
