"""Figures of the frequency branch: band energies of Fourier masks, mask galleries, essential vs adversarial
maps, IdCor between layers (SPEC 3)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

BAND_AXES = {
    "radial": "radial band (low -> high frequency, equal-width annuli up to the corner)",
    "angular": "angular band (0 -> 360 deg, counterclockwise from +f_x, f_y up)",
}


def band_differences(bands: pd.DataFrame, family: str, summary: pd.DataFrame) -> Figure:
    """Mean per-image mask energy per band for every model (top), its difference to the reference model and
    the share of images whose mask has more energy than the reference's (bottom). ``bands`` and ``summary`` as
    returned by :func:`featflow.frequency.fourier_masks.compare_masks`; models whose data-set mask missed its
    stopping criterion are named in red."""
    rows = bands[bands["family"] == family]
    models = list(dict.fromkeys(rows["model"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    for name in models:
        part = rows[rows["model"] == name]
        top.plot(part["band"], part["energy"], marker=".", label=name)
    for name in models[1:]:
        part = rows[rows["model"] == name]
        bottom.bar(part["band"], part["diff_to_reference"], alpha=0.6, label=f"{name} - {models[0]}")
        share = bottom.twinx()
        share.plot(part["band"], part["share_more_than_reference"], color="k", marker="x", lw=0.8)
        share.set_ylim(0, 1)
        share.set_ylabel(f"share of images, {name} > {models[0]}", fontsize=7)
    bottom.axhline(0, color="grey", lw=0.5)
    top.set_ylabel("mean band energy (L2 norm in band)")
    bottom.set_ylabel("energy difference")
    bottom.set_xlabel(BAND_AXES[family])
    top.legend(fontsize=7)
    if len(models) > 1:
        bottom.legend(fontsize=7, loc="upper right")
    accs = ", ".join(f"{m} {a:.1%}" for m, a in zip(summary["model"], summary["clean_acc"], strict=True))
    missed = [m for m, met in zip(summary["model"], summary["criterion_met"], strict=True) if not bool(met)]
    title = f"Fourier masks: {family} band energies (clean accuracy {accs})"
    if missed:
        title += f"\ndata-set mask MISSED its 99% criterion: {', '.join(missed)}"
    fig.suptitle(title, fontsize=9, color="crimson" if missed else "k")
    return fig


def mask_gallery(data: dict[str, dict], summary: pd.DataFrame) -> Figure:
    """Per model (rows): fftshifted data-set mask (flagged when it missed its stopping criterion), mean
    per-image mask, and a few images seen through their per-image masks. ``data`` maps model name -> contents of
    its masks HDF5 file plus ``masked``, the example images seen through their masks (N_examples, C, H, W);
    ``summary`` is the comparison's per-model table."""
    n_examples = min(len(d["masked"]) for d in data.values())
    cols = 2 + n_examples
    fig, axes = plt.subplots(len(data), cols, figsize=(1.7 * cols, 1.9 * len(data)), squeeze=False)
    for row, (name, d), (_, info) in zip(axes, data.items(), summary.iterrows(), strict=False):
        shifted = np.fft.fftshift(d["dataset_mask"].mean(0), axes=(-2, -1))
        mean_img = np.fft.fftshift(d["image_masks"].mean((0, 1)), axes=(-2, -1))
        masked = d["masked"]
        met = bool(info["criterion_met"])
        row[0].imshow(shifted, cmap="magma", vmin=0, vmax=1)
        row[0].set_title(
            f"{name}: data-set mask\nacc {info['masked_acc']:.1%} of clean {info['clean_acc']:.1%}"
            + ("" if met else "\nMISSED 99% criterion"),
            fontsize=6,
            color="k" if met else "crimson",
        )
        row[1].imshow(mean_img, cmap="magma", vmin=0, vmax=1)
        row[1].set_title(
            f"mean image mask\nprobe {info['probe_acc']:.0%} (shuffled {info['probe_acc_shuffled']:.0%})", fontsize=6
        )
        for ax, img in zip(row[2:], masked, strict=False):
            ax.imshow(np.clip(np.moveaxis(img, 0, -1), 0, 1).squeeze())
            ax.set_title("masked image", fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.suptitle("Fourier masks (zero frequency at the center)")
    return fig


def maps_figure(d: dict, row: dict) -> Figure:
    """Mean fftshifted essential and adversarial maps per channel (kept pairs), titled with the correlation
    measures ``row`` (IdCor, p-value, cosine, SVCCA, CKA) and the maps' convergence (flagged in red when any
    kept map did not converge)."""
    paired = d["paired"].astype(bool)
    kept = {"essential": d["keep_essential"].astype(bool), "adversarial": d["keep_adversarial"].astype(bool)}
    # the kept pairs; with none (an inaccurate network), each family's own kept maps, or all of them
    choice = {k: paired if paired.any() else (v if v.any() else np.ones_like(v)) for k, v in kept.items()}
    maps = {k: d[k][choice[k]] for k in kept}
    n_ch = maps["essential"].shape[1]
    fig, axes = plt.subplots(2, n_ch, figsize=(2.2 * n_ch, 4.4), squeeze=False)
    for r, (kind, m) in enumerate(maps.items()):
        mean = np.fft.fftshift(m.mean(0), axes=(-2, -1))
        top = max(float(mean.max()), 1e-12)  # the L1 penalty leaves small weights: scale to the family's maximum
        for c in range(n_ch):
            axes[r, c].imshow(mean[c], cmap="magma", vmin=0, vmax=top)
            label = f"{kind}, channel {c}" + (f"\n(scale 0-{top:.2g}, mean weight {mean.mean():.1e})" if c == 0 else "")
            axes[r, c].set_title(label, fontsize=6)
            axes[r, c].axis("off")
    if paired.sum() and np.isfinite(row["idcor"]):
        title = (
            f"{int(paired.sum())} pairs ({row['attack']}): IdCor {row['idcor']:.2f} (p {row['p_value']:.3g}, "
            f"within-class p {row['p_value_stratified']:.3g}) on "
            f"standardized maps; on raw maps cosine {row['cosine']:.2f}, SVCCA {row['svcca']:.2f}, "
            f"CKA {row['linear_cka']:.2f}"
        )
    else:
        title = f"{int(paired.sum())} kept pairs: too few to correlate"
    if not bool(row["all_converged"]):
        title += (
            f"\nNOT CONVERGED: converged share {row['converged_essential']:.2f} essential, "
            f"{row['converged_adversarial']:.2f} adversarial after {int(row['steps_max'])} steps"
        )
    else:
        title += f"\nall maps converged (at most {int(row['steps_max'])} steps)"
    fig.suptitle(title, fontsize=8, color="k" if bool(row["all_converged"]) else "crimson")
    return fig


def idcor_bars(table: pd.DataFrame) -> Figure:
    """IdCor of each layer pair, annotated with its plain (row-shuffle, the authors') and within-class permutation
    p-values; pairs whose plain null is invalid (its mean joint dimension below max(Id_A, Id_B), clustered data)
    are marked."""
    labels = [f"{a} / {b}" for a, b in zip(table["layer_a"], table["layer_b"], strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(labels)), 4))
    bars = ax.bar(labels, table["idcor"])
    for bar, (_, row) in zip(bars, table.iterrows(), strict=True):
        note = f"p={row['p_value']:.2g}\nwithin-class p={row['p_value_stratified']:.2g}"
        if bool(row["null_below"]):
            note += "\nplain null invalid"
            bar.set_hatch("//")
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=6)
    ax.set_ylabel("IdCor")
    ax.set_ylim(min(0, float(table["idcor"].min()) - 0.05), 1.3)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_title(
        "Intrinsic-dimension correlation between layers\n"
        "plain p: rows shuffled (authors); within-class p: shuffled inside classes. On clustered representations\n"
        "a plain shuffle mixes the clusters and lowers the null's joint dimension (p = 1 however dependent)",
        fontsize=7,
    )
    return fig
