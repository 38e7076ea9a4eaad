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


def realization_grid(images: np.ndarray, titles: list[str], flagged: np.ndarray, columns: int = 8) -> Figure:
    """A grid of realizations, images (n, C, H, W) in [0, 1], one title each; grayscale images (C = 1) in a gray
    colormap with a colorbar; ``flagged`` (n,) titles in red (targets ending with a negative objective)."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns + 0.8, 1.5 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown = None
    for ax, img, title, flag in zip(axes.flat, images, titles, flagged, strict=False):
        gray = img.shape[0] == 1
        shown = ax.imshow(
            np.clip(np.moveaxis(img, 0, -1), 0, 1).squeeze(), cmap="gray" if gray else None, vmin=0, vmax=1
        )
        ax.set_title(title, fontsize=7, color="red" if flag else "black")
    if shown is not None and images.shape[1] == 1:
        fig.colorbar(shown, ax=axes, shrink=0.6, label="pixel value")
    fig.suptitle(
        "FV realizations: x<i> = sparse target i, e<j> = canonical target e_j; S = final objective S_x(y)"
        + ("\nred: target ending with S < 0 (FV found no image that raises it)" if flagged.any() else ""),
        fontsize=8,
    )
    return fig


def angular_histograms(
    angles: dict[str, np.ndarray], stationary: np.ndarray, dim: int, n_f: int, kinks: bool = False
) -> Figure:
    """Histograms of the angular distance (deg) to the target for prediction (projected onto Z^-1 C, the paper's
    score; raw beside it), feature response and random; non-stationary realizations' predictions outlined, and the
    title says when the network is piecewise linear (``kinks``)."""
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
    note = " (piecewise-linear network: FV's optima on kinks)" if kinks else ""
    ax.set_title(f"{int(stationary.sum())} of {len(stationary)} realizations stationary{note}", fontsize=9)
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


def ssim_bivariate(
    angle: dict[str, np.ndarray],
    ssim: dict[str, np.ndarray],
    unstable: np.ndarray,
    stationary: np.ndarray,
    fraction: np.ndarray,
) -> Figure:
    """The paper's Fig. 2 view, one point per re-optimized realization: angular distance of an objective to the
    target against the SSIM after re-optimizing under it. Left (Fig. 2a): prediction x*, feature response and
    random objective. Right (Fig. 2b,c): x* alone, point size the fraction of the target inside Z^-1 C, grey the
    realizations that are not stationary. Triangles: unstable realizations (SSIM < threshold under their own
    target)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4), sharey=True)
    n = len(ssim["target"])
    bad = unstable[:n].astype(bool)
    for key, label in ANGLE_LABELS.items():
        dots = left.scatter(angle[key][:n][~bad], ssim[key][~bad], s=14, alpha=0.7, label=label)
        left.scatter(angle[key][:n][bad], ssim[key][bad], s=22, marker="^", color=dots.get_facecolor())
    size = 8 + 60 * fraction[:n]
    still = stationary[:n].astype(bool)
    for mask, marker in ((~bad, "o"), (bad, "^")):
        colors = np.where(still[mask], "tab:blue", "lightgray")
        right.scatter(angle["prediction"][:n][mask], ssim["prediction"][mask], s=size[mask], c=colors, marker=marker)
    left.scatter([], [], marker="^", color="gray", label=f"unstable ({int(bad.sum())} of {n})")
    right.scatter([], [], color="lightgray", label=f"not stationary ({int((~still).sum())})")
    right.scatter([], [], color="tab:blue", label="stationary")
    for ax in (left, right):
        ax.set_xlabel("angular distance of the objective to the target (degrees)")
        ax.legend(fontsize=7)
    left.set_ylabel("SSIM before / after re-optimization")
    left.set_ylim(-0.05, 1.05)
    left.set_title("(a) every objective", fontsize=9)
    right.set_title("(b, c) IFV prediction x*, projected; size: share of x inside Z^-1 C", fontsize=9)
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
    """The first sparse and canonical realizations with their objective value, targets that end with a negative
    objective flagged; headline numbers: the count, the flagged ones per target kind and the median final
    gradient norm."""
    real = store.read_h5(realizations, "fv_realizations")
    canonical = real["canonical"].astype(bool)
    below = real["objective"] < 0
    negative = canonical & below
    idx = np.concatenate([np.flatnonzero(~canonical)[: show // 2], np.flatnonzero(canonical)[: show // 2]])
    first = int(np.argmax(canonical)) if canonical.any() else 0  # e_j is realization first + j
    titles = [f"e{i - first}" if canonical[i] else f"x{i}" for i in idx]
    titles = [f"{t} S={real['objective'][i]:.2g}" for t, i in zip(titles, idx, strict=True)]
    numbers = {
        "realizations": len(canonical),
        "canonical targets ending with S < 0": f"{int(negative.sum())} of {int(canonical.sum())}"
        + (f" (e{', e'.join(str(i - first) for i in np.flatnonzero(negative))})" if negative.any() else ""),
        "sparse targets ending with S < 0": f"{int((below & ~canonical).sum())} of {int((~canonical).sum())}",
        "median |grad f_x|": f"{np.median(real['grad_norm']):.3g}",
    }
    store.save_figure(realization_grid(real["images"][idx], titles, below[idx]), out, numbers)


def plot_ifv(ifv: str | Path, medians: str | Path, angular_out: str | Path, alpha_out: str | Path) -> None:
    """Angular-distance histograms and the alpha_j stacked bar of one IFV experiment, with headline numbers (the
    medians per target kind with their bootstrap intervals from ``medians``, ifv_medians.csv)."""
    data, attrs = store.read_h5(ifv, "ifv"), store.read_attrs(ifv, "ifv")
    angle, stationary = data["angle"], data["stationary"].astype(bool)
    dim, n_f = int(attrs["critical_dim"]), data["prediction"].shape[1]
    med = {key: f"{np.median(value):.1f}" for key, value in angle.items()}
    numbers = {
        "IFV angle, projected onto Z^-1 C (deg)": f"{med['prediction']} (paper: {PAPER['prediction']})",
        "IFV angle, raw (deg)": med["prediction_raw"],
        "IFV angle, C = R^n_f (deg)": med["prediction_full"],
        "feature response (deg)": f"{med['response']} (paper: {PAPER['response']})",
        "random (deg)": f"{med['random']} (paper: {PAPER['random']})",
    }
    table = store.read_table(medians)
    for kind, rows in table[table["kind"] != "all"].groupby("kind", sort=False):
        text = " / ".join(f"{r.median:.1f} [{r.low:.1f}, {r.high:.1f}]" for r in rows.itertuples())
        numbers[f"IFV / response / random, {kind} targets (n = {rows['n'].iloc[0]}; deg, 95% CI)"] = text
    numbers.update(
        {
            "dim C chosen": f"{dim} of {n_f} ({attrs['selection_rule']} rule)",
            "stationary realizations (grad_rel <= limit)": f"{int(stationary.sum())} of {len(stationary)}"
            + (" (piecewise-linear network: optima on kinks)" if attrs.get("piecewise_linear") else ""),
            "IFV recovers x (residual ratio, uses the target)": f"{int(data['recovers'].sum())} of {len(stationary)}",
            "median grad_rel": f"{np.median(data['stationarity']['grad_rel']):.2g}",
        }
    )
    figure = angular_histograms(angle, stationary, dim, n_f, kinks=bool(attrs.get("piecewise_linear")))
    store.save_figure(figure, angular_out, numbers)
    alpha_numbers = {
        "alpha_1": f"{data['alpha'][0]:.2f} (paper: ~1 where IFV succeeds)",
        "stationary realizations": numbers["stationary realizations (grad_rel <= limit)"],
    }
    store.save_figure(alpha_bars(data["alpha"], int(stationary.sum()), len(stationary)), alpha_out, alpha_numbers)


def plot_reoptimize(ifv: str | Path, reopt: str | Path, out: str | Path) -> None:
    """The paper's Fig. 2 view of one IFV experiment (:func:`ssim_bivariate`), with the median SSIMs and the count
    of unstable realizations."""
    data = store.read_h5(ifv, "ifv")
    result = store.read_h5(reopt, "fv_reoptimize")
    ssim, unstable = result["ssim"], result["unstable"].astype(bool)
    numbers = {f"median SSIM, {key}": f"{np.median(value):.3f}" for key, value in ssim.items()}
    numbers["median SSIM, response"] += " (paper: clearly below target and prediction)"
    numbers["unstable realizations (SSIM < threshold under the target)"] = f"{int(unstable.sum())} of {len(unstable)}"
    figure = ssim_bivariate(
        data["angle"], ssim, unstable, data["stationary"].astype(bool), np.asarray(data["fraction_in_space"], float)
    )
    store.save_figure(figure, out, numbers)


def _angle_bars(ax: plt.Axes, labels: list[str], values: dict[str, np.ndarray], floor: float = 1e-3) -> None:
    """Horizontal bars of angles (deg) on a log axis, one group per label, each value written beside its bar
    (a bar of height ~0 is the success, which a linear axis draws as nothing)."""
    height = 0.8 / max(1, len(values))
    rows = np.arange(len(labels))
    for i, (name, vals) in enumerate(values.items()):
        pos = rows + i * height
        ax.barh(pos, np.maximum(vals, floor), height, label=name)
        for y, v in zip(pos, vals, strict=True):
            ax.text(max(v, floor) * 1.15, y, f"{v:.3g}" if v >= floor else f"< {floor:g}", va="center", fontsize=7)
    ax.set_yticks(rows + 0.4 - height / 2, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(floor, 900)
    ax.invert_yaxis()
    ax.set_xlabel(f"angle (degrees, log axis; < {floor:g} drawn at {floor:g})")


def critical_space_plot(
    rho: np.ndarray,
    dims: np.ndarray,
    angles: dict[str, np.ndarray],
    n_f: int,
    space_dims: np.ndarray,
    space_angles: np.ndarray,
    picks: dict[str, int],
) -> Figure:
    """Left: dim C of every distinct critical space against the rho that first gives it. Middle: the median
    projected angle of IFV to the targets in each candidate space (R^n_f and the critical spaces), with the space
    each selection rule picks. Right (only at the logits, ``angles`` non-empty): the angle between each known
    trivial direction ((1, ..., 1), e_c of never-seen classes) and each space's complement."""
    panels = 3 if angles else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    left, middle = axes[0], axes[1]
    left.semilogx(rho, dims, "o-")
    left.set_xlabel("rho (singular-value threshold)")
    left.set_ylabel("dim C")
    left.set_ylim(0, n_f + 0.5)
    left.set_title(f"{len(dims)} distinct critical spaces", fontsize=9)
    marks = {dim: [name for name, pick in picks.items() if pick == dim] for dim in space_dims}
    labels = [
        ("R^n_f" if d == n_f else f"dim {d}") + (f" <- {' + '.join(marks[d])}" if marks[d] else "") for d in space_dims
    ]
    _angle_bars(middle, labels, {"median projected angle x*, x": np.asarray(space_angles, float)})
    middle.set_title("IFV in each space; <- the rule that picks it", fontsize=9)
    if angles:
        _angle_bars(axes[2], [f"dim {d}" for d in dims], {f"{k} vs complement": v for k, v in angles.items()})
        axes[2].set_title("trivial solutions of the logits (paper: ~0)", fontsize=9)
        axes[2].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig
