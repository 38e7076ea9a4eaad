"""Figures of the theory branch: test accuracy vs steps for every model (the slides' Figure 4) and the MDS maps
of the neurons with the effective features (SPEC 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MODELS = (("network", "two-layer network"), ("random_features", "random features"), ("ntk", "NTK"))
STAGE_TITLES = {"init": "initialization", "step1": "after step 1", "step2": "after step 2", "end": "end"}


def accuracy_figure(curves: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], families: Sequence[str]) -> Figure:
    """Test accuracy vs steps, one panel per data family: GD curves (mean over seeds, min-max band), each
    convex model's optimum as a marker at the right edge, the linear model on x, the RBF SVM and the analytic
    linear ceiling as horizontal lines. ``curves``: (network file, baseline file) contents per family."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.6 * len(curves), 4.0), squeeze=False, sharey=True)
    for ax, (net, base), family in zip(axes[0], curves, families, strict=True):
        series = {
            "network": (net["steps"], net["test_acc"], net.get("optimum")),
            "random_features": (base["steps"], base["random_features"], base["random_features_optimum"]),
            "ntk": (base["steps"], base["ntk"], base["ntk_optimum"]),
        }
        for key, label in MODELS:
            steps, acc, optimum = series[key]
            (line,) = ax.plot(steps, acc.mean(axis=0), label=f"{label}, GD ({acc.shape[0]} seeds)")
            ax.fill_between(steps, acc.min(axis=0), acc.max(axis=0), color=line.get_color(), alpha=0.2)
            if optimum is not None:
                ax.plot(steps[-1] * 1.15, np.mean(optimum), marker="<", color=line.get_color(), markersize=8)
        ax.plot([], [], marker="<", color="gray", linestyle="none", label="convex optimum (SVM solver)")
        ax.axhline(float(base["linear"]), color="C4", linestyle=":", label="linear on x (optimum)")
        ax.axhline(float(base["svm"]), color="gray", linestyle="--", label="RBF kernel SVM")
        ax.axhline(float(base["linear_ceiling"]), color="black", linestyle="-.", linewidth=1, label="linear ceiling")
        ax.axhline(0.5, color="black", linewidth=0.5)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(left=0, right=net["steps"][-1] * 1.3)
        ax.set(title=f"{family} data", xlabel="gradient steps", ylim=(0.4, 1.02))
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, -1].legend(loc="center right", fontsize=7)
    fig.tight_layout()
    return fig


def alignment_figure(alignments: Sequence[Mapping[str, Any]], families: Sequence[str]) -> Figure:
    """MDS maps (dissimilarity 1 - cos) of the neurons (dots) and the effective features +-sum_A M_j (stars)
    at each stage, for the first seed; one row per family, the fraction of aligned neurons in each title."""
    stages = [str(s) for s in alignments[0]["stages"]]
    fig, axes = plt.subplots(
        len(alignments), len(stages), figsize=(3.0 * len(stages), 3.0 * len(alignments)), squeeze=False
    )
    for row, (data, family) in enumerate(zip(alignments, families, strict=True)):
        for col, stage in enumerate(stages):
            ax = axes[row, col]
            coords = np.asarray(data["mds"][0, col])
            # Stars below the dots: aligned neurons sit exactly on them.
            ax.scatter(coords[-2:, 0], coords[-2:, 1], marker="*", s=220, color="red", edgecolor="black", zorder=1)
            ax.scatter(coords[:-2, 0], coords[:-2, 1], s=6, alpha=0.6, zorder=2)
            cos = np.asarray(data["cosines"][col, 0])
            ax.set_title(
                f"{family}: {STAGE_TITLES.get(stage, stage)}\nmean cos {cos.mean():.2f}, "
                f"{(cos > 0.99).mean():.0%} > 0.99",
                fontsize=9,
            )
            if stage == "step2" and not bool(data["structured"]):
                ax.set_xlabel(
                    f"neurons follow the training E[y x] (|cos| {float(data['train_direction_cosine'][0]):.2f});\n"
                    f"its cos with the test set's: {float(data['train_test_direction_cosine']):.2f} (noise)",
                    fontsize=7,
                )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig
