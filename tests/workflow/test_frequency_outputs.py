"""Outputs of the frequency branch on the tiny DAG (SPEC 3): shapes, provenance, headline properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from featflow import store

TINY = yaml.safe_load((Path(__file__).parent / "tiny.yaml").read_text())["frequency"]


def _provenance(attrs: dict) -> None:
    for key in ("stage", "config", "seed", "code_version", "torch_version"):
        assert key in attrs, key
    assert attrs["stage"] == "frequency"


@pytest.mark.parametrize("model", TINY["masks"]["models"])
def test_fourier_masks(dag_run: Path, model: str) -> None:
    path = dag_run / f"results/frequency/models/{model}/masks.h5"
    data, attrs = store.read_h5(path, "fourier_masks"), store.read_attrs(path, "fourier_masks")
    _provenance(attrs)
    n_img, bands = TINY["masks"]["image_masks"]["n_images"], TINY["masks"]["n_bands"]
    assert data["dataset_mask"].shape == (1, 32, 32)
    assert data["image_masks"].shape == (n_img, 1, 32, 32)
    for key in ("dataset_mask", "image_masks"):
        assert data[key].min() >= 0 and data[key].max() <= 1  # clamped after every step
    assert data["bands"]["radial_images"].shape == (n_img, bands)
    empty = ~data["image_masks"].reshape(n_img, -1).any(1)  # no band profile (NaN), e.g. the blank image kept
    for family in ("angular_images", "radial_images"):
        np.testing.assert_allclose((data["bands"][family][~empty] ** 2).sum(1), 1.0, rtol=1e-6)  # L2 norms per band
        assert np.isnan(data["bands"][family][empty]).all()
    assert data["indices"].shape == (TINY["masks"]["max_samples"],)
    assert attrs["density"] < 1.0  # the L1 term removed weight from the all-ones start
    mask = data["dataset_mask"]
    assert (mask[mask > 0] >= 1e-3 * mask.max()).all()  # snapped: nothing between 0 and zero_below x the largest
    assert attrs["support"] == pytest.approx((mask > 0).mean())
    assert attrs["image_kept"] >= 0.5  # per-image masks keep the network's own prediction
    converged = data["image_converged"].astype(bool)
    assert (
        attrs["image_converged"] == converged.mean()
        and (data["image_steps"][~converged] == attrs["image_steps_max"]).all()
    )
    if not attrs["criterion_met"]:  # a mask that missed the 99% criterion says so
        assert attrs["masked_acc"] < 0.99 * attrs["clean_acc"]


def test_mask_comparison(dag_run: Path) -> None:
    out = dag_run / "results/frequency/compare"
    bands = pd.read_csv(out / "mask_bands.csv")
    models = TINY["masks"]["models"]
    assert len(bands) == len(models) * 2 * TINY["masks"]["n_bands"]
    reference = bands[bands["model"] == models[0]]
    np.testing.assert_allclose(reference["diff_to_reference"], 0.0)
    np.testing.assert_allclose(reference["share_more_than_reference"], 0.0)
    np.testing.assert_allclose(reference[["diff_low", "diff_high"]], 0.0)  # the reference against itself
    assert (bands["diff_low"] <= bands["diff_to_reference"] + 1e-12).all()
    assert (bands["diff_to_reference"] <= bands["diff_high"] + 1e-12).all()
    for _, part in bands.groupby(["model", "family"]):
        assert (part["energy"] ** 2).sum() <= 1.0 + 1e-9  # means of per-image band norms whose squares sum to 1
    summary = pd.read_csv(out / "mask_summary.csv")
    assert list(summary["model"]) == models
    assert summary[["masked_acc", "probe_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    empty = summary["complement_support"] == 0  # an empty complement (the blank image) is refused: NaN
    assert summary["complement_acc"][~empty].between(0, 1).all() and summary["complement_acc"][empty].isna().all()
    assert summary["probe_acc_shuffled"].between(0, 1).all() and summary["criterion_met"].isin([True, False]).all()
    for name in ("bands_radial.png", "bands_angular.png", "masks.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.parametrize("model", TINY["maps"]["models"])
def test_adversarial_maps(dag_run: Path, model: str) -> None:
    base = dag_run / f"results/frequency/models/{model}"
    data, attrs = store.read_h5(base / "maps.h5", "frequency_maps"), store.read_attrs(base / "maps.h5")
    _provenance(attrs)
    n = TINY["maps"]["n_images"]
    assert data["essential"].shape == data["adversarial"].shape == (n, 3, 32, 32)
    eps = TINY["maps"]["eps"]
    assert np.abs(data["adversarial_images"] - data["images"]).max() <= eps + 1e-5
    paired = data["paired"].astype(bool)
    assert np.all(data["adversarial_labels"][paired] != data["labels"][paired])  # attacks succeeded
    row = pd.read_csv(base / "maps.csv").iloc[0]
    assert row["n_pairs"] == paired.sum() <= min(row["n_essential"], row["n_adversarial"])
    conv = data["convergence"]
    steps, converged = conv["essential_steps"], conv["essential_converged"].astype(bool)
    assert (steps[converged] > TINY["maps"]["min_steps"]).all() and (
        steps[~converged] == TINY["maps"]["max_steps"]
    ).all()
    assert bool(row["all_converged"]) == bool(
        converged[paired].all() and conv["adversarial_converged"].astype(bool)[paired].all()
    )
    support = data["support"]
    assert support["essential"].shape == support["adversarial_dc_only"].shape == (n,)
    low = min(row["support_median_essential"], row["support_median_adversarial"]) < row["support_min"]
    assert bool(row["support_ok"]) != bool(low or row["n_pairs"] == 0)
    if row["n_pairs"] >= 4:  # the tiny network may be too inaccurate to leave pairs; then the measures are NaN
        assert 0 < row["p_value"] <= 1 and 0 < row["p_value_stratified"] <= 1 and np.isfinite(row["idcor"])
        assert 0 <= row["p_value_authors"] <= 1 or np.isnan(row["p_value_authors"])
        assert -1 <= row["cosine"] <= 1 and 0 <= row["linear_cka"] <= 1 + 1e-9 and 0 <= row["svcca"] <= 1 + 1e-9
    else:
        assert np.isnan(row["idcor"]) and np.isnan(row["linear_cka"])
    assert (base / "maps.png").stat().st_size > 1000


@pytest.mark.parametrize("experiment", TINY["idcor"]["experiments"])
def test_layer_idcor(dag_run: Path, experiment: str) -> None:
    base = dag_run / f"results/{experiment}/frequency"
    table = pd.read_csv(base / "idcor_layers.csv")
    assert [[a, b] for a, b in zip(table["layer_a"], table["layer_b"], strict=False)] == TINY["idcor"]["pairs"]
    assert (table[["id_a", "id_b", "id_joint"]] > 0).all().all()
    assert table["p_value"].between(0, 1).all() and table["p_value_stratified"].between(0, 1).all()
    # act = ReLU(fc1(pool)) is a function of pool: the joint dimension stays near the larger one
    row = table[(table["layer_a"] == "pool") & (table["layer_b"] == "act")].iloc[0]
    assert row["idcor"] > 0.5
    assert (base / "idcor_layers.png").stat().st_size > 1000
