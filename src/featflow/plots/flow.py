"""The feature-flow figure (Fel et al. 2024, seed 000 Sec. 4): which features survive without each block's main
branch, and which path carries a feature into each block."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from featflow.metrics.stats import Rho, deciles

GROUPS = (("simplest 10%", 0, "C0"), ("most complex 10%", 1, "C3"))


def _curves(ax: Axes, blocks: Sequence[str], values: np.ndarray, k: np.ndarray, measure: str, legend: bool) -> None:
    """Mean over each decile of the skip path (solid) and the main branch (dashed) per block, 10-90% bands."""
    at = np.arange(len(blocks))
    masks = deciles(k)
    for label, group, color in GROUPS:
        mask = masks[group]
        for path, style in ((0, "-"), (1, "--")):
            rows = values[path][:, mask]
            name = "skip" if path == 0 else "main"
            ax.plot(at, np.nanmean(rows, 1), style, marker="o", color=color, label=f"{label}, {name}")
            ax.fill_between(at, *np.nanquantile(rows, [0.1, 0.9], axis=1), color=color, alpha=0.12)
    ax.set_xticks(at, blocks, rotation=45 if len(blocks) > 6 else 0, fontsize=7)
    ax.set_xlabel("residual block")
    ax.set_ylabel(measure)
    ax.set_ylim(0, 1.02)
    if legend:
        ax.legend(fontsize=6, loc="center right")


def _retention(ax: Axes, blocks: Sequence[str], retention: np.ndarray, k: np.ndarray, rhos: Sequence[Rho]) -> None:
    """Median code retention per block for the simplest and most complex deciles, 10-90% bands; rho per block."""
    at = np.arange(len(blocks))
    masks = deciles(k)
    for label, group, color in GROUPS:
        rows = retention[:, masks[group]]
        ax.plot(at, np.nanmedian(rows, 1), "-", marker="o", color=color, label=label)
        ax.fill_between(at, *np.nanquantile(rows, [0.1, 0.9], axis=1), color=color, alpha=0.12)
    labels = [f"{name}\nrho {rho.rho:+.2f}" for name, rho in zip(blocks, rhos, strict=False)]
    ax.set_xticks(at, labels, rotation=45 if len(blocks) > 6 else 0, fontsize=7)
    ax.set_xlabel("residual block whose main branch is zeroed")
    ax.set_ylabel("code retention (corr. of codes over images)")
    ax.set_ylim(min(0.0, float(np.nanmin(retention, initial=0.0))), 1.02)
    ax.set_title(f"main-branch ablation: rho(K, mean retention) {rhos[-1]}", fontsize=8)
    ax.legend(fontsize=6, loc="best")


def flow_figure(
    blocks: Sequence[str],
    iv: np.ndarray,
    cka: np.ndarray,
    retention: np.ndarray,
    k: np.ndarray,
    table: pd.DataFrame,
    retention_rho: Sequence[Rho],
    share_rho: Rho,
) -> Figure:
    """(a) code retention per block under main-branch ablation for the simplest and most complex deciles, with
    Spearman's rho(K, retention) per block and for the mean over blocks (95% interval); (b) I_V from each block's
    skip path and main branch for the same deciles; (c) the same with linear CKA (the paper's first version);
    (d) each feature's I_V skip share against K, planted factors as stars, with Spearman's rho."""
    fig, (rx, ax, bx, cx) = plt.subplots(1, 4, figsize=(18, 3.8))
    _retention(rx, blocks, retention, k, retention_rho)
    _curves(ax, blocks, iv, k, "I_V(path -> feature) (held-out R^2)", legend=True)
    ax.set_title("V-information per path", fontsize=9)
    _curves(bx, blocks, cka, k, "linear CKA(path, feature)", legend=False)
    bx.set_title("CKA per path", fontsize=9)
    feats, facts = table[table.kind == "feature"], table[table.kind == "factor"]
    cx.scatter(feats.complexity, feats.skip_share, s=10, alpha=0.6, label="features")
    if len(facts):
        cx.scatter(facts.complexity, facts.skip_share, marker="*", s=120, color="k", label="planted factors")
        for row in facts.itertuples():
            cx.annotate(
                row.target, (row.complexity, row.skip_share), fontsize=7, xytext=(4, 4), textcoords="offset points"
            )
    cx.set_xlabel("complexity K")
    cx.set_ylabel("skip share of I_V (sum over blocks)")
    cx.set_title(f"skip share (decodability, not use): Spearman {share_rho}", fontsize=8)
    cx.legend(fontsize=7)
    fig.tight_layout()
    return fig
