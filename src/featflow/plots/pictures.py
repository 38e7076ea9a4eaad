"""Pictures of features (Fel et al. 2024, Fig. 3): each feature's FV picture beside its top-activating images."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure


def _show(ax: plt.Axes, image: np.ndarray) -> None:
    """One (C, H, W) image in [0, 1]; gray for one channel."""
    pixels = np.clip(image.transpose(1, 2, 0), 0, 1)
    if pixels.shape[2] == 1:
        ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(pixels)
    ax.set_xticks([])
    ax.set_yticks([])


def feature_pictures(
    pictures: np.ndarray,
    top_images: np.ndarray,
    features: Sequence[int],
    complexity: Sequence[float],
    code_ratio: Sequence[float],
    code_rank: Sequence[int],
    roles: Sequence[str],
    flagged: Sequence[bool],
) -> Figure:
    """A row per feature: its FV picture (framed), then its top-activating images, labelled with the feature's
    role, id, K, the picture's own code over the top image's (z/max) and the rank of z_i among the picture's codes;
    a flagged picture (z/max < 1 or code rank > 1) is marked in red.

    pictures : (n, C, H, W) in [0, 1].  top_images : (n, m, C, H, W) in [0, 1].
    """
    n, m = top_images.shape[:2]
    fig, axes = plt.subplots(
        n,
        m + 2,
        figsize=((m + 1.3) * 0.95, n * 1.15),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 0.25, *[1] * m]},
    )
    for row in range(n):
        _show(axes[row, 0], pictures[row])
        for side in axes[row, 0].spines.values():
            side.set_edgecolor("C3")
            side.set_linewidth(1.5)
        axes[row, 1].axis("off")
        for col in range(m):
            _show(axes[row, col + 2], top_images[row, col])
        flag = "\nFLAGGED" if flagged[row] else ""
        axes[row, 0].set_ylabel(
            f"{roles[row]}\n#{features[row]} K={complexity[row]:.2f}\nz/max={code_ratio[row]:.2f}\n"
            f"code rank {code_rank[row]}{flag}",
            fontsize=5.5,
            color="red" if flagged[row] else "black",
        )
    axes[0, 0].set_title("picture", fontsize=7, color="C3")
    axes[0, 2].set_title("top-activating images", fontsize=7, loc="left")
    fig.suptitle("feature pictures: simplest and most complex features", fontsize=9)
    fig.tight_layout()
    return fig


def meta_feature_gallery(
    top_images: np.ndarray, mean_k: Sequence[float], n_atoms: Sequence[int], sums: np.ndarray
) -> Figure:
    """Meta-features (Fel et al. 2024, Fig. 2): a row per meta-feature, simplest (lowest mean K) on top, its top
    images (largest summed code of its atoms, the sum written under each), labelled with its size and mean K.

    top_images : (c, m, C, H, W) in [0, 1].  sums : (c, m).
    """
    c, m = top_images.shape[:2]
    fig, axes = plt.subplots(c, m, figsize=(m * 0.95 + 1.0, c * 1.0), squeeze=False)
    for row in range(c):
        for col in range(m):
            _show(axes[row, col], top_images[row, col])
            axes[row, col].set_xlabel(f"{sums[row, col]:.2f}", fontsize=5, labelpad=1)
        axes[row, 0].set_ylabel(f"M{row}: {n_atoms[row]} atoms\nmean K={mean_k[row]:.3f}", fontsize=6)
    fig.suptitle("meta-features (k-means of atoms), simplest to most complex: top images", fontsize=8)
    fig.tight_layout()
    return fig
