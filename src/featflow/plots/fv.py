"""Figures of the FV/IFV branch: realizations, angular distances, alpha_j decomposition, SSIM (SPEC 2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from featflow import store  # noqa: E402

ANGLE_LABELS = {"prediction": "IFV prediction x*", "response": "feature response y/|y|", "random": "random"}


def realization_grid(images: np.ndarray, titles: list[str], columns: int = 8) -> Figure:
    """A grid of realizations, images (n, C, H, W) in [0, 1], one title each."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(np.clip(np.moveaxis(img, 0, -1), 0, 1).squeeze())
        ax.set_title(title, fontsize=7)
    fig.suptitle("FV realizations")
    return fig


def angular_histograms(angles: dict[str, np.ndarray]) -> Figure:
    """Histograms of the angular distance (deg) to the target for prediction, feature response and random."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 90, 31)
    for key, label in ANGLE_LABELS.items():
        values = angles[key]
        ax.hist(values, bins=bins, alpha=0.5, label=f"{label} (median {np.median(values):.1f})")
    ax.set_xlabel("angular distance to the target objective (degrees)")
    ax.set_ylabel("realizations")
    ax.legend(fontsize=8)
    return fig


def alpha_bars(alpha: np.ndarray, show: int = 5) -> Figure:
    """Stacked bar of alpha_j (share of the target on the j-th smallest left singular vector of Z_k Dy)."""
    fig, ax = plt.subplots(figsize=(2.8, 3.5))
    bottom = 0.0
    for j, value in enumerate(alpha[:show]):
        ax.bar(0, value, bottom=bottom, label=f"alpha_{j + 1} = {value:.2f}")
        bottom += float(value)
    ax.bar(0, max(0.0, 1.0 - bottom), bottom=bottom, color="lightgray", label=f"alpha_>{show}")
    ax.set_xticks([])
    ax.set_ylim(0, 1)
    ax.set_ylabel("alpha_j (stacked)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def ssim_bivariate(angle: dict[str, np.ndarray], ssim: dict[str, np.ndarray]) -> Figure:
    """Angular distance to the target vs SSIM after re-optimization, one point per realization and objective."""
    fig, ax = plt.subplots(figsize=(6, 4))
    n = len(ssim["target"])
    ax.scatter(np.zeros(n), ssim["target"], s=12, label="target x", marker="x")
    for key, label in ANGLE_LABELS.items():
        ax.scatter(angle[key][:n], ssim[key], s=12, alpha=0.7, label=label)
    ax.set_xlabel("angular distance of the objective to the target (degrees)")
    ax.set_ylabel("SSIM before / after re-optimization")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    return fig


def similarity_heatmap(similarity: np.ndarray, model_a: str, model_b: str) -> Figure:
    """Cross-network inversion: row i is the objective over B's features that explains A's FV of e_i."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    image = ax.imshow(similarity, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xlabel(f"feature of {model_b} (IFV objective)")
    ax.set_ylabel(f"feature of {model_a} (visualized)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_cross(cross: str | Path, model_a: str, model_b: str, out: str | Path) -> None:
    """The feature-to-feature similarity matrix of one cross-network inversion."""
    store.save_figure(similarity_heatmap(store.read_h5(cross, "fv_cross")["similarity"], model_a, model_b), out)


def plot_realizations(realizations: str | Path, out: str | Path, show: int = 16) -> None:
    """The first sparse and canonical realizations with their objective value."""
    real = store.read_h5(realizations, "fv_realizations")
    canonical = real["canonical"].astype(bool)
    idx = np.concatenate([np.flatnonzero(~canonical)[: show // 2], np.flatnonzero(canonical)[: show // 2]])
    first = int(np.argmax(canonical)) if canonical.any() else 0  # e_j is realization first + j
    titles = [f"e{i - first}" if canonical[i] else f"x{i}" for i in idx]
    titles = [f"{t} S={real['objective'][i]:.2g}" for t, i in zip(titles, idx, strict=True)]
    store.save_figure(realization_grid(real["images"][idx], titles), out)


def plot_ifv(ifv: str | Path, angular_out: str | Path, alpha_out: str | Path) -> None:
    """Angular-distance histograms and the alpha_j stacked bar of one IFV experiment."""
    data = store.read_h5(ifv, "ifv")
    store.save_figure(angular_histograms(data["angle"]), angular_out)
    store.save_figure(alpha_bars(data["alpha"]), alpha_out)


def plot_reoptimize(ifv: str | Path, reopt: str | Path, out: str | Path) -> None:
    """The bivariate angular distance / SSIM plot of one IFV experiment."""
    angle = store.read_h5(ifv, "ifv")["angle"]
    store.save_figure(ssim_bivariate(angle, store.read_h5(reopt, "fv_reoptimize")["ssim"]), out)
