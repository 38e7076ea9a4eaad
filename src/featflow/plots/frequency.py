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
    """Mean per-image mask energy per band for every model (top), its difference to the reference model with its
    95% bootstrap CI over images (error bars), and the share of images whose mask has more energy than the
    reference's (bottom). ``bands`` and ``summary`` as returned by
    :func:`featflow.frequency.figures.compare_masks`; models whose data-set mask missed its stopping
    criterion are named in red."""
    rows = bands[bands["family"] == family]
    models = list(dict.fromkeys(rows["model"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    for name in models:
        part = rows[rows["model"] == name]
        top.plot(part["band"], part["energy"], marker=".", label=name)
    for name in models[1:]:
        part = rows[rows["model"] == name]
        err = [part["diff_to_reference"] - part["diff_low"], part["diff_high"] - part["diff_to_reference"]]
        label = f"{name} - {models[0]}"
        bottom.bar(part["band"], part["diff_to_reference"], yerr=err, capsize=2, alpha=0.6, label=label)
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
    """Per model (rows): fftshifted data-set mask (flagged when it missed its stopping criterion or its complement
    is empty; the complement accuracy with the share of frequencies it keeps), mean
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
        empty = not info["complement_support"] > 0
        complement = (
            "complement EMPTY (blank image)"
            if empty
            else f"complement acc {info['complement_acc']:.1%} on {info['complement_support']:.1%} of freqs"
        )
        row[0].set_title(
            f"{name}: data-set mask\nacc {info['masked_acc']:.1%} of clean {info['clean_acc']:.1%}\n{complement}"
            + ("" if met else "\nMISSED 99% criterion"),
            fontsize=6,
            color="k" if met and not empty else "crimson",
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


CHANNEL_NAMES = {1: ("gray",), 3: ("red", "green", "blue")}


def channel_names(n_channels: int) -> tuple[str, ...]:
    """Display names of the image channels: gray, red / green / blue, or numbered."""
    return CHANNEL_NAMES.get(n_channels, tuple(f"channel {c}" for c in range(n_channels)))


def frequency_extent(height: int, width: int) -> tuple[float, float, float, float]:
    """imshow extent of an fftshifted (H, W) grid in cycles per image: f_x to the right, f_y up, 0 at the center
    pixel (H // 2, W // 2) as in :func:`featflow.frequency.bands.band_index`."""
    return (-(width // 2) - 0.5, width - 1 - width // 2 + 0.5, -(height - 1 - height // 2) - 0.5, height // 2 + 0.5)


def maps_figure(d: dict, row: dict) -> Figure:
    """Mean fftshifted essential and adversarial maps per channel (kept pairs) on a log colour scale with a
    colorbar, axes in cycles per image, and each family's support per map (kept weights above 1e-3 of the map's
    largest; the ``min_support`` threshold dashed). The title gives the correlation measures ``row`` (IdCor with
    its rank, within-class and authors' p, cosine, SVCCA, CKA), in red the support or convergence flags."""
    from matplotlib.colors import LogNorm

    paired = d["paired"].astype(bool)
    kept = {"essential": d["keep_essential"].astype(bool), "adversarial": d["keep_adversarial"].astype(bool)}
    # the kept pairs; with none (an inaccurate network), each family's own kept maps, or all of them
    choice = {k: paired if paired.any() else (v if v.any() else np.ones_like(v)) for k, v in kept.items()}
    maps = {k: d[k][choice[k]] for k in kept}
    n_ch, height, width = maps["essential"].shape[1:]
    names = channel_names(n_ch)
    fig, axes = plt.subplots(2, n_ch + 1, figsize=(max(7.5, 2.8 * n_ch + 2.8), 5.4), squeeze=False)
    for r, (kind, m) in enumerate(maps.items()):
        mean = np.fft.fftshift(m.mean(0), axes=(-2, -1))
        top = max(float(mean.max()), 1e-12)
        norm = LogNorm(vmin=top * 1e-4, vmax=top)  # four decades: the L1 penalty leaves most weights near 0
        for c in range(n_ch):
            ax = axes[r, c]
            image = ax.imshow(
                np.clip(mean[c], top * 1e-4, None), cmap="magma", norm=norm, extent=frequency_extent(height, width)
            )
            ax.set_title(f"{kind} map, {names[c]} (mean of {len(m)})", fontsize=7)
            ax.set_xlabel("f_x (cycles / image)", fontsize=6)
            ax.set_ylabel("f_y (cycles / image)", fontsize=6)
            ax.tick_params(labelsize=6)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        support = np.asarray(d["support"][kind])[choice[kind]]
        hist = axes[r, n_ch]
        hist.hist(support, bins=np.arange(support.max() + 2) - 0.5 if support.max() < 40 else 30, color="grey")
        hist.axvline(float(row["support_min"]), color="crimson", ls="--", lw=0.8)
        dc_only = float(np.asarray(d["support"][f"{kind}_dc_only"])[choice[kind]].mean())
        hist.set_title(f"{kind}: support per map\nmedian {np.median(support):.1f}, DC-only {dc_only:.0%}", fontsize=7)
        hist.set_xlabel(f"kept weights of {n_ch * height * width} (> 1e-3 of max)", fontsize=6)
        hist.set_ylabel("maps", fontsize=6)
        hist.tick_params(labelsize=6)
    flags = []
    if paired.sum() and np.isfinite(row["idcor"]):
        title = (
            f"{int(paired.sum())} pairs ({row['attack']}): IdCor {row['idcor']:.2f} (rank p {row['p_value']:.3g}, "
            f"within-class p {row['p_value_stratified']:.3g},\non standardized {int(row['pool'])}x max-pooled "
            f"maps; authors' z-score p {row['p_value_authors']:.3g} on raw unpooled maps); on the pooled, "
            f"unstandardized maps cosine "
            f"{row['cosine']:.2f}, SVCCA {row['svcca']:.2f}, CKA {row['linear_cka']:.2f}"
        )
    else:
        title = f"{int(paired.sum())} kept pairs: too few to correlate"
    if not bool(row["support_ok"]):
        flags.append(f"SUPPORT below {int(row['support_min'])} weights per map: comparison not applicable")
    if not bool(row["all_converged"]):
        flags.append(
            f"NOT CONVERGED: converged share {row['converged_essential']:.2f} essential, "
            f"{row['converged_adversarial']:.2f} adversarial after {int(row['steps_max'])} steps"
        )
    title += "\n" + ("; ".join(flags) if flags else f"all maps converged (at most {int(row['steps_max'])} steps)")
    fig.suptitle(title, fontsize=7, color="crimson" if flags else "k")
    fig.tight_layout()
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
