"""The frequency branch's comparisons, figures and their numbers (rules fourier_mask_figures,
adversarial_maps_figure, idcor_figure), apart from the torch code that computes the masks, maps and IdCor: they
read stored tables, masks and maps, so their jobs import no torch (``tests/unit/test_imports.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featflow import store

MAPS_KIND = "frequency_maps"  # the kind of a model's maps file (featflow.frequency.freq_maps writes it)
MASKS_KIND = "fourier_masks"  # the kind of a model's masks file (featflow.frequency.fourier_masks writes it)


def masked_images(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """x_M = Re(ifft2(M * fft2(x))) of stored images (N, C, H, W) under their masks, in numpy: what
    :func:`featflow.frequency.masks.apply_mask` computes, for the gallery of the comparison."""
    return np.fft.ifft2(np.fft.fft2(images) * masks).real.astype(images.dtype)


def maps_numbers(row: dict[str, Any]) -> dict[str, str]:
    """Headline numbers of the maps figure, the paper's values beside (Basile et al., ResNet-20 on CIFAR-10)."""
    return {
        "attack": f"{row['attack']} (paper: FMN L-inf)",
        "pairs": f"{int(row['n_pairs'])} of {int(row['n_images'])}",
        "converged": f"{row['converged_essential']:.2f} essential, {row['converged_adversarial']:.2f} adversarial"
        + ("" if row["all_converged"] else " (NOT all converged)"),
        "support": f"median {row['support_median_essential']:.1f} essential, "
        f"{row['support_median_adversarial']:.1f} adversarial kept weights per map, DC-only "
        f"{row['dc_only_essential']:.0%} / {row['dc_only_adversarial']:.0%}"
        + ("" if bool(row["support_ok"]) else f" (BELOW {int(row['support_min'])}: comparison not applicable)"),
        "IdCor": f"{row['idcor']:.3f} (paper: high)",
        "IdCor p": f"rank {row['p_value']:.3g} (pooled rows, featflow), within-class {row['p_value_stratified']:.3g}, "
        f"authors' z-score {row['p_value_authors']:.3g} (raw maps) (paper: smallest possible)",
        "cosine": f"{row['cosine']:.3f} (paper: clearly below IdCor)",
        "SVCCA": f"{row['svcca']:.3f} (paper: clearly below IdCor)",
        "linear CKA": f"{row['linear_cka']:.3f}",
        "mean map weight": f"{row['density_essential']:.2e} essential, {row['density_adversarial']:.2e} adversarial",
    }


def write_maps_figure(maps_path: str | Path, table_path: str | Path, png: str | Path) -> None:
    """The mean essential and adversarial maps of one model, titled with their correlation and convergence."""
    from featflow.plots.frequency import maps_figure

    row = store.read_table(table_path).iloc[0].to_dict()
    store.save_figure(maps_figure(store.read_h5(maps_path, MAPS_KIND), row), png, maps_numbers(row))


def idcor_numbers(table: pd.DataFrame) -> dict[str, str]:
    """Headline numbers of the layer IdCor figure: per pair, IdCor with its plain and within-class p-values
    (Basile et al. report high IdCor with the smallest possible p between successive layers)."""
    numbers = {}
    for _, row in table.iterrows():
        smallest = 1 / (int(row["n_perm"]) + 1)
        numbers[f"{row['layer_a']} / {row['layer_b']}"] = (
            f"IdCor {row['idcor']:.3f}, p {row['p_value']:.3g}, within-class p {row['p_value_stratified']:.3g}"
            + (" (plain null invalid: clustered)" if bool(row["null_below"]) else "")
            + f" (paper: high, smallest possible p = {smallest:.3g})"
        )
    return numbers


def paired_band_ci(
    energy: np.ndarray, base: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap CI over images of the mean per-band difference ``energy - base``, both (N, B) band
    energies of the same images under two networks' masks. Returns the lower and upper bounds (B,)."""
    diff = energy - base
    draws = np.random.default_rng(seed).integers(0, diff.shape[0], (n_boot, diff.shape[0]))
    means = diff[draws].mean(1)  # (n_boot, B)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def compare_masks(paths: dict[str, str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare the per-image mask band energies of several models with the first (the reference).

    Parameters
    ----------
    paths : model name -> masks HDF5 file, the reference first; all evaluated on the same images.

    Returns
    -------
    bands : one row per (model, family, band): mean energy, difference to the reference with its 95% bootstrap
        CI over images (:func:`paired_band_ci`), and the share of images whose mask has more energy in that band
        than the reference network's mask of the same image; over the ``images`` whose masks are non-empty under
        both networks (an empty mask has no band profile).
    summary : one row per model with its accuracies, densities and probe accuracies.
    """
    data = {name: store.read_h5(path, MASKS_KIND) for name, path in paths.items()}
    names = list(data)
    ref = data[names[0]]
    for name in names[1:]:
        if not np.array_equal(data[name]["indices"], ref["indices"]):
            raise ValueError(f"frequency.masks.models: '{name}' was evaluated on other images than '{names[0]}'")
    rows = []
    for name in names:
        for family in ("radial", "angular"):
            energy, base = data[name]["bands"][f"{family}_images"], ref["bands"][f"{family}_images"]
            both = np.isfinite(energy).all(1) & np.isfinite(base).all(1)  # an empty mask has no band profile
            energy, base, n_bands = energy[both], base[both], energy.shape[1]
            low, high = paired_band_ci(energy, base)
            rows.append(
                pd.DataFrame(
                    {
                        "model": name,
                        "family": family,
                        "band": np.arange(n_bands),
                        "energy": energy.mean(0),
                        "dataset_energy": data[name]["bands"][f"{family}_dataset"],
                        "diff_to_reference": energy.mean(0) - base.mean(0),
                        "diff_low": low,
                        "diff_high": high,
                        "share_more_than_reference": (energy > base).mean(0),
                        "images": int(both.sum()),
                    }
                )
            )
    keys = (
        "clean_acc",
        "masked_acc",
        "criterion_met",
        "mask_epoch",
        "complement_acc",
        "complement_support",
        "density",
        "support",
        "image_kept",
        "image_complement_kept",
        "image_complement_support",
        "image_complement_empty",
        "image_density",
        "image_converged",
        "image_steps_max",
        "probe_acc",
        "probe_acc_shuffled",
    )
    summary = pd.DataFrame(
        [{"model": name, **{k: store.read_attrs(paths[name], MASKS_KIND)[k] for k in keys}} for name in names]
    )
    return pd.concat(rows, ignore_index=True), summary


def write_mask_comparison(
    paths: dict[str, str | Path],
    bands_csv: str | Path,
    summary_csv: str | Path,
    radial_png: str | Path,
    angular_png: str | Path,
    gallery_png: str | Path,
) -> None:
    """Tables and figures comparing the models' masks (the first model is the reference)."""
    from featflow.plots import frequency as plots

    bands, summary = compare_masks(paths)
    store.write_table(bands, bands_csv)
    store.write_table(summary, summary_csv)
    for family, png in (("radial", radial_png), ("angular", angular_png)):
        store.save_figure(plots.band_differences(bands, family, summary), png, band_numbers(bands, summary, family))
    data = {name: store.read_h5(path, MASKS_KIND) for name, path in paths.items()}
    for d in data.values():
        d["masked"] = masked_images(d["images"][:3], d["image_masks"][:3])
    store.save_figure(plots.mask_gallery(data, summary), gallery_png, gallery_numbers(summary))


def band_numbers(bands: pd.DataFrame, summary: pd.DataFrame, family: str) -> dict[str, str]:
    """Headline numbers of a band figure: the networks' clean accuracies and, per compared model, its energy
    difference to the reference summed over the lowest quarter of the radial bands (paper: the PGD network's
    masks put more energy at low radial frequencies), or its largest angular difference and where it lies."""
    numbers = {f"clean accuracy {m}": f"{a:.3f}" for m, a in zip(summary["model"], summary["clean_acc"], strict=True)}
    rows = bands[bands["family"] == family]
    models = list(dict.fromkeys(rows["model"]))
    for name in models[1:]:
        part = rows[rows["model"] == name]
        n_bands = int(part["band"].max()) + 1
        if family == "radial":
            low = part[part["band"] < max(1, n_bands // 4)]
            numbers[f"{name} - {models[0]}, lowest quarter of radial bands"] = (
                f"{low['diff_to_reference'].sum():+.4f} (paper: > 0 for PGD)"
            )
        else:
            top = part.loc[part["diff_to_reference"].abs().idxmax()]
            wedge = 360 / n_bands
            numbers[f"{name} - {models[0]}, largest angular difference"] = (
                f"{top['diff_to_reference']:+.4f} at {top['band'] * wedge:.0f}-{(top['band'] + 1) * wedge:.0f} deg "
                "(paper: direction-dependent for PGD)"
            )
    return numbers


def gallery_numbers(summary: pd.DataFrame) -> dict[str, str]:
    """Headline numbers of the mask gallery, per model: masked vs clean accuracy, criterion, complement
    accuracy with the share of frequencies its complement keeps, the per-image masks' complement and convergence,
    class probe vs shuffled labels (paper values beside)."""
    numbers: dict[str, str] = {}
    for _, r in summary.iterrows():
        m = r["model"]
        numbers[f"{m} masked / clean accuracy"] = (
            f"{r['masked_acc']:.3f} / {r['clean_acc']:.3f}"
            + ("" if bool(r["criterion_met"]) else " (MISSED the 99% criterion)")
            + " (paper: within 1 point, 89.2 / 89.6)"
        )
        numbers[f"{m} complement accuracy"] = (
            f"{r['complement_acc']:.3f} on {r['complement_support']:.1%} of the frequencies (paper: destroyed)"
            if r["complement_support"] > 0
            else "not computed: the mask keeps every frequency, its complement is the blank image"
        )
        numbers[f"{m} image masks"] = (
            f"complement keeps the prediction {r['image_complement_kept']:.3f} on a median "
            f"{r['image_complement_support']:.1%} of the frequencies ({r['image_complement_empty']:.0%} empty); "
            f"{r['image_converged']:.0%} converged within {int(r['image_steps_max'])} steps"
        )
        numbers[f"{m} class probe on image masks"] = (
            f"{r['probe_acc']:.3f} vs {r['probe_acc_shuffled']:.3f} shuffled (paper: 0.82 vs 0.21)"
        )
    return numbers
