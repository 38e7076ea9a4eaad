"""Claims of Karantzas et al. (Fourier masks of essential frequencies) and Basile et al. (essential vs adversarial
frequency maps; IdCor between layers), and their readers: each model's ``masks.h5`` (accuracies, support, class
probe in its attributes; per-image radial band energies), ``maps.h5`` (the maps, their number of permutations)
and ``maps.csv`` (IdCor, its p-values, the linear measures, the maps' support), each experiment's ``idcor_layers.csv``.

Kinds of experiment: ``masks`` (``frequency.masks.models``; the first is the reference, standard training),
``maps`` (``frequency.maps.models``), ``idcor`` (``frequency.idcor.experiments``); replicated over training seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from featflow.claims.core import Claim, Source, Unit, binomial_ci, bootstrap, mean
from featflow.claims.verdict import ALPHA, Reading, not_applicable
from featflow.seeds import base, replicates

PAPERS = {"masks": "Karantzas et al. 2022", "maps": "Basile et al.", "idcor": "Basile et al. 2025"}
MIN_PAIRS = 4
MIN_CONVERGED = 16  # images with converged masks under both networks for the radial comparison
NEAR_CHANCE = 0.10  # "near chance": within 10 points


def _names(names: list[str] | None) -> list[str]:
    return list(dict.fromkeys(base(n) for n in names or []))


def units(config: Mapping[str, Any], boot_seed: int) -> list[Unit]:
    """Every replicate of every masks model, maps model and IdCor experiment, with the files its claims read."""
    freq = config.get("frequency") or {}
    found = []
    masks = _names((freq.get("masks") or {}).get("models"))
    if masks:
        reference = dict(replicates(config, "models", masks[0]))
        for model in masks:
            for seed, name in replicates(config, "models", model):
                ref = reference.get(seed)
                files = {"masks": f"results/frequency/models/{name}/masks.h5"}
                if ref and ref != name:
                    files["reference"] = f"results/frequency/models/{ref}/masks.h5"
                facts = {
                    "augment": config["models"][name]["train"].get("augment", "none"),
                    "reference": masks[0],
                    "reference_augment": config["models"][masks[0]]["train"].get("augment", "none"),
                }
                found.append(Unit("masks", model, seed, name, files, facts=facts, boot_seed=boot_seed))
    for model in _names((freq.get("maps") or {}).get("models")):
        for seed, name in replicates(config, "models", model):
            files = {
                "maps": f"results/frequency/models/{name}/maps.h5",
                "table": f"results/frequency/models/{name}/maps.csv",
            }
            found.append(Unit("maps", model, seed, name, files, boot_seed=boot_seed))
    for exp in _names((freq.get("idcor") or {}).get("experiments")):
        for seed, name in replicates(config, "experiments", exp):
            found.append(
                Unit(
                    "idcor",
                    exp,
                    seed,
                    name,
                    {"table": f"results/{name}/frequency/idcor_layers.csv"},
                    boot_seed=boot_seed,
                )
            )
    return found


def _masks(unit: Unit, src: Source, role: str = "masks") -> tuple[dict[str, Any], dict[str, Any]]:
    return src.attrs(unit.files[role], "fourier_masks"), src.h5(unit.files[role], "fourier_masks")


IN_SAMPLE = (
    "no held-out accuracies: the file predates the fit / validation / test split and measured them on the images "
    "the mask was fit on (rerun fourier_mask)"
)


def _held_out(data: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """Per held-out test image (never used to fit or choose the mask), whether the network is right on the clean,
    masked and complement images, and the labels; None when the file keeps no held-out predictions."""
    preds = data.get("predictions") or {}
    if "labels" not in preds:
        return None
    labels = np.asarray(preds["labels"])
    right = {k: (np.asarray(preds[k]) == labels).astype(float) for k in ("clean", "masked", "complement")}
    return {**right, "labels": labels}


def read_masked_accuracy(unit: Unit, src: Source) -> Reading:
    attrs, data = _masks(unit, src)
    held = _held_out(data)
    if held is None:
        return not_applicable(IN_SAMPLE)
    clean, masked = float(attrs["clean_acc"]), float(attrs["masked_acc"])
    value, low, high = bootstrap(mean, (held["masked"] - held["clean"],), unit.boot_seed)
    text = (
        f"masked {masked:.3f} of clean {clean:.3f} on {len(held['labels'])} held-out images "
        f"(support {float(attrs['support']):.3f})"
    )
    return Reading(value, low, high, reason=f"{text}; paired bootstrap over images")


def read_complement(unit: Unit, src: Source) -> Reading:
    attrs, data = _masks(unit, src)
    support = float(attrs["support"])
    if support >= 1.0:
        return not_applicable(
            f"the mask keeps every frequency (support {support:.3f}): its complement is a blank image"
        )
    if not bool(attrs["criterion_met"]):
        return not_applicable(
            f"the mask (support {support:.3f}) never kept 99% of the clean accuracy on the validation images: "
            "its complement is not that of the essential frequencies"
        )
    held = _held_out(data)
    if held is None:
        return not_applicable(IN_SAMPLE)
    labels = held["labels"]
    chance = float(np.bincount(labels).max() / labels.size)
    comp = float(attrs["complement_acc"])
    value, low, high = bootstrap(mean, (held["complement"] - chance,), unit.boot_seed)
    text = f"complement {comp:.3f} on {1 - support:.1%} of the frequencies, chance {chance:.3f}"
    return Reading(value, low, high, reason=f"{text}; {labels.size} held-out images, bootstrap over images")


def read_low_frequency(unit: Unit, src: Source) -> Reading:
    facts = unit.facts
    if unit.experiment == facts["reference"]:
        return not_applicable("the reference network itself (standard training)")
    if facts["augment"] != "pgd" or facts["reference_augment"] != "none":
        return not_applicable(
            f"trained with augment '{facts['augment']}' against a reference with '{facts['reference_augment']}': "
            "the claim compares PGD training with standard training"
        )
    if "reference" not in unit.files:
        return not_applicable(f"no replicate of the reference {facts['reference']} at seed {unit.seed}")
    _, robust = _masks(unit, src)
    _, ref = _masks(unit, src, "reference")
    if not np.array_equal(robust["indices"], ref["indices"]):
        return not_applicable("the two networks' masks were fit on different images")
    # masks stopped before the stopping rule held still move their band statistics, and an empty mask has none:
    # only images whose masks converged, non-empty, under both networks are compared
    both = np.asarray(robust["image_converged"], bool) & np.asarray(ref["image_converged"], bool)
    both &= np.isfinite(robust["bands"]["radial_images"]).all(1) & np.isfinite(ref["bands"]["radial_images"]).all(1)
    if both.sum() < MIN_CONVERGED:
        return not_applicable(
            f"{int(both.sum())} of {both.size} images have converged per-image masks under both networks "
            f"(need {MIN_CONVERGED}): raise frequency.masks.image_masks.max_steps"
        )
    a, b = robust["bands"]["radial_images"][both], ref["bands"]["radial_images"][both]
    low_bands = slice(0, max(1, a.shape[1] // 4))
    diff = a[:, low_bands].sum(1) - b[:, low_bands].sum(1)
    value, low, high = bootstrap(mean, (diff,), unit.boot_seed)
    return Reading(
        value,
        low,
        high,
        reason=f"{len(diff)} of {both.size} images (masks converged and non-empty under both networks), lowest "
        f"{low_bands.stop} of {a.shape[1]} radial bands",
    )


def read_probe(unit: Unit, src: Source) -> Reading:
    attrs, data = _masks(unit, src)
    n = len(data["image_masks"])
    probe, shuffled = float(attrs["probe_acc"]), float(attrs["probe_acc_shuffled"])
    low, high = binomial_ci(probe, n)
    return Reading(
        probe - shuffled,
        low - shuffled,
        high - shuffled,
        reason=f"probe {probe:.3f} vs {shuffled:.3f} shuffled, {n} masks",
    )


def map_support(unit: Unit, src: Source) -> tuple[str | None, str]:
    """(None or why the maps say nothing about frequencies, a description of their support) from maps.csv: the
    median kept weights per map of each family against the run's ``min_support`` (featflow.frequency.freq_maps)."""
    row = src.table(unit.files["table"]).iloc[0]
    if int(row["n_pairs"]) < MIN_PAIRS:
        return f"only {int(row['n_pairs'])} images with both maps kept (need {MIN_PAIRS})", ""
    text = (
        f"median {row['support_median_essential']:.1f} / {row['support_median_adversarial']:.1f} kept weights per "
        f"essential / adversarial map, {row['dc_only_essential']:.0%} / {row['dc_only_adversarial']:.0%} DC-only"
    )
    if not bool(row["support_ok"]):
        return f"the maps keep a few gains, not frequencies ({text}; below {int(row['support_min'])})", text
    return None, text


def read_maps_idcor(unit: Unit, src: Source) -> Reading:
    bad, support = map_support(unit, src)
    if bad:
        return not_applicable(bad)
    row = src.table(unit.files["table"]).iloc[0]
    if not np.isfinite(row["idcor"]):
        return not_applicable("IdCor not computed")
    n_perm = len(src.h5(unit.files["maps"], "frequency_maps")["id_perm"])
    if 1 / (n_perm + 1) > ALPHA:
        return not_applicable(f"{n_perm} permutations cannot reach p <= {ALPHA:g}")
    return Reading(
        float(row["idcor"]),
        p=float(row["p_value"]),
        reason=f"rank p on {int(row['pool'])}x max-pooled maps (featflow's choice); within-class p "
        f"{float(row['p_value_stratified']):.3g}; authors' z-score p {float(row['p_value_authors']):.3g} on raw maps; "
        f"{int(row['n_pairs'])} pairs; {support}",
    )


def read_maps_linear(unit: Unit, src: Source) -> Reading:
    bad, support = map_support(unit, src)
    if bad:
        return not_applicable(bad)
    row = src.table(unit.files["table"]).iloc[0]
    linear = max(float(row["cosine"]), float(row["svcca"]))
    if not np.isfinite(row["idcor"]) or not np.isfinite(linear):
        return not_applicable("IdCor or the linear measures not computed")
    return Reading(
        float(row["idcor"]) - linear,
        reason=f"IdCor {row['idcor']:.3f}, cosine {row['cosine']:.3f}, SVCCA {row['svcca']:.3f}; {support}",
    )


def read_layer_idcor(unit: Unit, src: Source) -> Reading:
    table = src.table(unit.files["table"])
    if table.empty:
        return not_applicable("no layer pair")
    n_perm = int(table["n_perm"].min())
    if 1 / (n_perm + 1) > ALPHA:
        return not_applicable(f"{n_perm} permutations cannot reach p <= {ALPHA:g}")
    # the plain shuffle mixes clusters on clustered data (its null falls below the data): the within-class null then
    null_below = table["null_below"].astype(bool) if "null_below" in table else np.zeros(len(table), bool)
    p = np.where(null_below, table["p_value_stratified"], table["p_value"]).astype(float)
    pairs = "; ".join(
        f"{r.layer_a}/{r.layer_b} {r.idcor:.3f} (p {pv:.3g}{', within-class' if nb else ''})"
        for r, pv, nb in zip(table.itertuples(), p, null_below, strict=True)
    )
    return Reading(float(table["idcor"].min()), p=float(p.max()), reason=f"smallest IdCor, largest p over {pairs}")


CLAIMS = [
    Claim(
        id="masked_accuracy",
        paper=PAPERS["masks"],
        statistic="accuracy on images filtered by the data-set Fourier mask minus clean accuracy",
        expected="within 1 point (paper: 89.6 -> 89.2 for the standard VGG)",
        direction=">",
        null=-0.01,
        null_text="-1 point",
        precondition="none",
        kind="masks",
        figure="results/frequency/compare/masks.png",
        read=read_masked_accuracy,
    ),
    Claim(
        id="mask_complement_chance",
        paper=PAPERS["masks"],
        statistic="accuracy on images filtered by the mask's complement 1 - 1[M > 0], minus chance",
        expected="near chance: the complement destroys accuracy",
        direction="<",
        null=NEAR_CHANCE,
        null_text=f"{NEAR_CHANCE:.0%} above chance",
        precondition="the mask drops some frequency (support < 1) and met the accuracy criterion",
        kind="masks",
        figure="results/frequency/compare/masks.png",
        read=read_complement,
    ),
    Claim(
        id="robust_masks_low_frequency",
        paper=PAPERS["masks"],
        statistic="per-image mask energy in the lowest quarter of the radial bands, PGD network minus standard network",
        expected="positive: adversarially trained networks' masks are lower-frequency",
        direction=">",
        null=0.0,
        null_text="0 (no shift)",
        precondition="a PGD-trained network compared with a standard one on the same images; 16+ images whose "
        "per-image masks converged under both",
        kind="masks",
        figure="results/frequency/compare/bands_radial.png",
        read=read_low_frequency,
    ),
    Claim(
        id="mask_class_probe",
        paper=PAPERS["masks"],
        statistic="cross-validated accuracy of a linear class probe on per-image masks minus the same with shuffled "
        "labels",
        expected="positive: masks carry the class (paper: 82% vs 21%)",
        direction=">",
        null=0.0,
        null_text="0 (no better than shuffled)",
        precondition="none",
        kind="masks",
        figure="results/frequency/compare/masks.png",
        read=read_probe,
    ),
    Claim(
        id="maps_idcor",
        paper=PAPERS["maps"],
        statistic="IdCor of paired essential and adversarial frequency maps, with its permutation p-value",
        expected="high, with the smallest possible p",
        direction=">",
        null=0.0,
        null_text=f"0 (independent maps), p <= {ALPHA:g}",
        precondition="median map support >= frequency.maps.min_support weights; 4+ pairs; enough permutations to "
        "reach p 0.05",
        kind="maps",
        figure="results/frequency/models/{name}/maps.png",
        read=read_maps_idcor,
    ),
    Claim(
        id="maps_linear_below_idcor",
        paper=PAPERS["maps"],
        statistic="IdCor minus the larger of the maps' mean cosine and SVCCA",
        expected="positive: the linear measures clearly lower than IdCor",
        direction=">",
        null=0.0,
        null_text="0",
        precondition="median map support >= frequency.maps.min_support weights; 4+ pairs",
        kind="maps",
        figure="results/frequency/models/{name}/maps.png",
        read=read_maps_linear,
    ),
    Claim(
        id="layer_idcor",
        paper=PAPERS["idcor"],
        statistic="smallest IdCor over the layer pairs, with the largest p-value (within-class null on clustered data)",
        expected="high, with the smallest possible p, between layers",
        direction=">",
        null=0.0,
        null_text=f"0 (independent layers), p <= {ALPHA:g}",
        precondition="enough permutations to reach p 0.05",
        kind="idcor",
        figure="results/{name}/frequency/idcor_layers.png",
        read=read_layer_idcor,
    ),
]
