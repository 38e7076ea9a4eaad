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
PAPER = {  # the paper's values (GoogLeNet inception4c, k = 2; DenseNet CIFAR-10 logits, Sec. 3.4-3.5)
    "prediction": "~10",
    "response": "~45",
    "random": "~90",
}


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


def angular_histograms(angles: dict[str, np.ndarray], stationary: np.ndarray, dim: int, n_f: int) -> Figure:
    """Histograms of the angular distance (deg) to the target for prediction (projected onto Z^-1 C, the paper's
    score; raw beside it), feature response and random; non-stationary realizations' predictions outlined."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    bins = np.linspace(0, 90, 31)
    space = "R^n_f" if dim == n_f else f"dim C = {dim}"
    for key, label in ANGLE_LABELS.items():
        values = angles[key]
        label = f"{label}, projected onto Z^-1 C ({space})" if key == "prediction" else label
        ax.hist(values, bins=bins, alpha=0.5, label=f"{label} (median {np.median(values):.1f})")
    if dim < n_f:
        full = angles["prediction_full"]
        ax.hist(
            full,
            bins=bins,
            histtype="step",
            color="gray",
            label=f"IFV prediction in R^n_f (median {np.median(full):.1f})",
        )
    raw = angles["prediction_raw"]
    ax.hist(
        raw, bins=bins, histtype="step", color="k", ls="--", label=f"IFV prediction, raw (median {np.median(raw):.1f})"
    )
    if (~stationary).any():
        ax.hist(
            angles["prediction"][~stationary],
            bins=bins,
            histtype="step",
            color="red",
            lw=1.5,
            label=f"prediction, non-stationary realizations ({int((~stationary).sum())})",
        )
    ax.set_xlabel("angular distance to the target objective (degrees)")
    ax.set_ylabel("realizations")
    ax.set_title(f"{int(stationary.sum())} of {len(stationary)} realizations stationary", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def alpha_bars(alpha: np.ndarray, n_stationary: int, n: int, show: int = 5) -> Figure:
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
    ax.set_title(f"{n_stationary} of {n} stationary", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def ssim_bivariate(angle: dict[str, np.ndarray], ssim: dict[str, np.ndarray], stationary: np.ndarray) -> Figure:
    """Angular distance to the target vs SSIM after re-optimization, one point per realization and objective;
    non-stationary realizations are drawn as triangles."""
    fig, ax = plt.subplots(figsize=(6, 4))
    n = len(ssim["target"])
    still = stationary[:n]
    ax.scatter(np.zeros(n), ssim["target"], s=12, label="target x", marker="x")
    for key, label in ANGLE_LABELS.items():
        dots = ax.scatter(angle[key][:n][still], ssim[key][still], s=12, alpha=0.7, label=label)
        if (~still).any():
            ax.scatter(angle[key][:n][~still], ssim[key][~still], s=18, marker="^", color=dots.get_facecolor())
    if (~still).any():
        ax.scatter([], [], marker="^", color="gray", label="non-stationary realization")
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
    """The feature-to-feature similarity matrix of one cross-network inversion, with the share of features best
    explained by the same-index feature of B."""
    similarity = store.read_h5(cross, "fv_cross")["similarity"]
    hits = float((similarity.argmax(1) == np.arange(len(similarity))).mean())
    numbers = {"e_i explained best by B's feature i": f"{100 * hits:.0f}% (chance {100 / similarity.shape[1]:.0f}%)"}
    store.save_figure(similarity_heatmap(similarity, model_a, model_b), out, numbers)


def plot_realizations(realizations: str | Path, out: str | Path, show: int = 16) -> None:
    """The first sparse and canonical realizations with their objective value; headline numbers: the count and
    the median final gradient norm."""
    real = store.read_h5(realizations, "fv_realizations")
    canonical = real["canonical"].astype(bool)
    idx = np.concatenate([np.flatnonzero(~canonical)[: show // 2], np.flatnonzero(canonical)[: show // 2]])
    first = int(np.argmax(canonical)) if canonical.any() else 0  # e_j is realization first + j
    titles = [f"e{i - first}" if canonical[i] else f"x{i}" for i in idx]
    titles = [f"{t} S={real['objective'][i]:.2g}" for t, i in zip(titles, idx, strict=True)]
    numbers = {"realizations": len(canonical), "median |grad f_x|": f"{np.median(real['grad_norm']):.3g}"}
    store.save_figure(realization_grid(real["images"][idx], titles), out, numbers)


def plot_ifv(ifv: str | Path, angular_out: str | Path, alpha_out: str | Path) -> None:
    """Angular-distance histograms and the alpha_j stacked bar of one IFV experiment, with headline numbers."""
    data = store.read_h5(ifv, "ifv")
    angle, stationary = data["angle"], data["stationary"].astype(bool)
    dim, n_f = int(store.read_attrs(ifv)["critical_dim"]), data["prediction"].shape[1]
    med = {key: f"{np.median(value):.1f}" for key, value in angle.items()}
    numbers = {
        "IFV angle, projected onto Z^-1 C (deg)": f"{med['prediction']} (paper: {PAPER['prediction']})",
        "IFV angle, raw (deg)": med["prediction_raw"],
        "IFV angle, C = R^n_f (deg)": med["prediction_full"],
        "feature response (deg)": f"{med['response']} (paper: {PAPER['response']})",
        "random (deg)": f"{med['random']} (paper: {PAPER['random']})",
        "dim C chosen": f"{dim} of {n_f}",
        "stationary realizations": f"{int(stationary.sum())} of {len(stationary)}",
        "median grad_rel": f"{np.median(data['stationarity']['grad_rel']):.2g}",
    }
    store.save_figure(angular_histograms(angle, stationary, dim, n_f), angular_out, numbers)
    alpha_numbers = {
        "alpha_1": f"{data['alpha'][0]:.2f} (paper: ~1 where IFV succeeds)",
        "stationary realizations": numbers["stationary realizations"],
    }
    store.save_figure(alpha_bars(data["alpha"], int(stationary.sum()), len(stationary)), alpha_out, alpha_numbers)


def plot_reoptimize(ifv: str | Path, reopt: str | Path, out: str | Path) -> None:
    """The bivariate angular distance / SSIM plot of one IFV experiment, with the median SSIMs."""
    data = store.read_h5(ifv, "ifv")
    ssim = store.read_h5(reopt, "fv_reoptimize")["ssim"]
    numbers = {f"median SSIM, {key}": f"{np.median(value):.3f}" for key, value in ssim.items()}
    numbers["median SSIM, response"] += " (paper: clearly below target and prediction)"
    store.save_figure(ssim_bivariate(data["angle"], ssim, data["stationary"].astype(bool)), out, numbers)


def critical_space_plot(rho: np.ndarray, dims: np.ndarray, angles: dict[str, np.ndarray], n_f: int) -> Figure:
    """dim C of every distinct critical space against the rho that first gives it, and the angle between each
    known trivial direction ((1, ..., 1), e_c of never-seen classes) and the space's complement."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    left.semilogx(rho, dims, "o-")
    left.set_xlabel("rho (singular-value threshold)")
    left.set_ylabel("dim C")
    left.set_ylim(0, n_f + 0.5)
    width = 0.8 / max(1, len(angles))
    for i, (name, values) in enumerate(angles.items()):
        right.bar(np.arange(len(dims)) + i * width, values, width, label=f"{name} vs complement of C")
    right.set_xticks(np.arange(len(dims)) + 0.4 - width / 2, [f"dim {d}" for d in dims], fontsize=7)
    right.set_ylabel("angle (degrees)")
    right.set_ylim(0, 90)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig
