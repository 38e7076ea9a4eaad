"""Figures of the frequency branch: band energies of Fourier masks, mask galleries, essential vs adversarial
maps, IdCor between layers (SPEC 3)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from featflow.frequency.fourier_masks import apply_mask  # noqa: E402


def band_differences(bands: pd.DataFrame, family: str) -> Figure:
    """Mean per-image mask energy per band for every model (top), its difference to the reference model and
    the share of images whose mask has more energy than the reference's (bottom). ``bands`` as returned by
    :func:`featflow.frequency.fourier_masks.compare_masks`."""
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
    top.set_ylabel("mean band energy")
    bottom.set_ylabel("energy difference")
    low, high = ("low", "high") if family == "radial" else ("-pi", "pi")
    bottom.set_xlabel(f"{family} band ({low} -> {high})")
    top.legend(fontsize=7)
    if len(models) > 1:
        bottom.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Fourier masks: {family} band energies")
    return fig


def mask_gallery(data: dict[str, dict], n_examples: int = 3) -> Figure:
    """Per model (rows): fftshifted data-set mask, mean per-image mask, and a few images seen through their
    per-image masks. ``data`` maps model name -> contents of its masks HDF5 file."""
    cols = 2 + n_examples
    fig, axes = plt.subplots(len(data), cols, figsize=(1.7 * cols, 1.8 * len(data)), squeeze=False)
    for row, (name, d) in zip(axes, data.items(), strict=False):
        shifted = np.fft.fftshift(d["dataset_mask"].mean(0), axes=(-2, -1))
        mean_img = np.fft.fftshift(d["image_masks"].mean((0, 1)), axes=(-2, -1))
        masked = apply_mask(
            torch.from_numpy(d["images"][:n_examples]), torch.from_numpy(d["image_masks"][:n_examples])
        ).numpy()
        row[0].imshow(shifted, cmap="magma", vmin=0, vmax=1)
        row[0].set_title(f"{name}: data-set mask", fontsize=7)
        row[1].imshow(mean_img, cmap="magma", vmin=0, vmax=1)
        row[1].set_title("mean image mask", fontsize=7)
        for ax, img in zip(row[2:], masked, strict=False):
            ax.imshow(np.clip(np.moveaxis(img, 0, -1), 0, 1).squeeze())
            ax.set_title("masked image", fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.suptitle("Fourier masks (zero frequency at the center)")
    return fig


def maps_figure(d: dict, row: dict) -> Figure:
    """Mean fftshifted essential and adversarial maps per channel (kept pairs), titled with the correlation
    measures ``row`` (IdCor, p-value, cosine, CKA)."""
    paired = d["paired"].astype(bool)
    kept = {"essential": d["keep_essential"].astype(bool), "adversarial": d["keep_adversarial"].astype(bool)}
    # the kept pairs; with none (an inaccurate network), each family's own kept maps, or all of them
    choice = {k: paired if paired.any() else (v if v.any() else np.ones_like(v)) for k, v in kept.items()}
    maps = {k: d[k][choice[k]] for k in kept}
    n_ch = maps["essential"].shape[1]
    fig, axes = plt.subplots(2, n_ch, figsize=(2.2 * n_ch, 4.4), squeeze=False)
    for r, (kind, m) in enumerate(maps.items()):
        mean = np.fft.fftshift(m.mean(0), axes=(-2, -1))
        for c in range(n_ch):
            axes[r, c].imshow(mean[c], cmap="magma", vmin=0, vmax=1)
            axes[r, c].set_title(f"{kind}, channel {c}", fontsize=7)
            axes[r, c].axis("off")
    if paired.sum() and np.isfinite(row["idcor"]):
        title = (
            f"{int(paired.sum())} pairs: IdCor {row['idcor']:.2f} (p {row['p_value']:.3g}), "
            f"cosine {row['cosine']:.2f}, CKA {row['linear_cka']:.2f}"
        )
    else:
        title = f"{int(paired.sum())} kept pairs: too few to correlate"
    fig.suptitle(title, fontsize=8)
    return fig


def idcor_bars(table: pd.DataFrame) -> Figure:
    """IdCor of each layer pair, annotated with its permutation p-value."""
    labels = [f"{a} / {b}" for a, b in zip(table["layer_a"], table["layer_b"], strict=True)]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels)), 3.5))
    bars = ax.bar(labels, table["idcor"])
    for bar, p in zip(bars, table["p_value"], strict=True):
        ax.annotate(
            f"p={p:.2g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7
        )
    ax.set_ylabel("IdCor")
    ax.set_ylim(min(0, float(table["idcor"].min()) - 0.05), 1.05)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_title("Intrinsic-dimension correlation between layers")
    return fig
