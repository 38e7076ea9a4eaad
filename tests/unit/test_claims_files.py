"""Verdicts computed from the files (featflow.claims): a fake run (small output files of every kind the registered
claims read, values as the papers found them, two training seeds) gives every claim its verdict; changing one
stored value changes that verdict; the plan adds only a new replicate's files; every registered claim appears on
the landing page."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from featflow import store
from featflow.claims.registry import CLAIMS, COLUMNS, evaluate, inputs, plan, write_claims
from featflow.seeds import expand
from featflow.summary import write_summary

RAW: dict[str, Any] = {
    "seed": 0,
    "datasets": {},
    "models": {
        "cnn": {"dataset": "planted", "train": {"seed": 0, "seeds": [0, 1]}},
        "cnn-pgd": {"dataset": "planted", "train": {"seed": 0, "augment": "pgd", "seeds": [0, 1]}},
        "resnet": {"dataset": "planted", "train": {"seed": 0}},
        "cnn-digits": {"dataset": "digits", "train": {"seed": 0}},
        "cnn-digits-no4": {"dataset": "digits-no4", "train": {"seed": 0}},
    },
    "experiments": {
        "planted": {"model": "cnn", "dataset": "planted"},
        "planted-res": {"model": "resnet", "dataset": "planted"},
    },
    "complexity": {"experiments": ["planted", "planted-res"], "flow": {"experiments": ["planted-res"]}},
    "temporal": {"experiments": ["planted"]},
    "fv": {
        "conv": {"model": "cnn", "invert_with": []},
        "logits": {"model": "cnn-digits", "invert_with": []},
        "no4": {"model": "cnn-digits-no4", "invert_with": []},
    },
    "frequency": {
        "masks": {"models": ["cnn", "cnn-pgd"]},
        "maps": {"models": ["cnn"]},
        "idcor": {"experiments": ["planted"]},
    },
    "theory": {"structured": "shi", "unstructured": "shi-flat", "seeds": 2},
}
K = 64  # features of the fake dictionaries
N_F = 10


def _basis_without(n: int, directions: list[np.ndarray]) -> np.ndarray:
    """Orthonormal basis of the complement of ``directions`` in R^n."""
    q, _ = np.linalg.qr(np.stack(directions, 1))
    u, _, _ = np.linalg.svd(np.eye(n) - q @ q.T)
    return u[:, : n - len(directions)]


def write_unit(unit: dict[str, Any], rng: np.random.Generator) -> None:
    """The files of one replicate, with values as the papers found them."""
    kind, files = unit["kind"], unit["files"]
    k = rng.uniform(0, 1, K)
    noise = rng.normal(0, 0.1, K)
    if kind == "complexity":
        table = pd.DataFrame(
            {
                "feature": np.arange(K),
                "complexity": k,
                "importance_abs": 1 - k + noise,
                "redundancy_p0.5": 1 - k + noise,
                "participation": 40 - 30 * k + 10 * noise,
                "sensitivity_s0.1": k + noise,
                "sensitivity_s0.5": -k,  # at chance: left out
            }
        )
        table.attrs = {"accuracy": 0.95, "accuracy_reconstructed": 0.949, "noise_at_chance": ["0.5"]}
        table.attrs.update({"redundancy_masks": 5000, "redundancy_seed_rho": {"0.5": [-0.95, -0.94, -0.95]}})
        store.write_table(table, Path(files["table"]).with_suffix(".csv"), files["table"])
        factors = pd.DataFrame({"factor": ["color", "orientation", "parity"], "complexity": [0.01, 0.2, 0.7]})
        store.write_table(factors, files["factors"])
    elif kind == "flow":
        table = pd.DataFrame(
            {
                "target": range(K),
                "kind": "feature",
                "complexity": k,
                "retention_mean": 1 - k + noise,
                "skip_share": 1 - k + noise,
                "skip_share_cka": -k,
            }
        )
        store.write_table(table, files["flow"])
    elif kind == "temporal":
        first = k + 0.2
        first[:10] = k[:10] - 0.1  # a few rise
        table = pd.DataFrame(
            {"feature": range(K), "complexity": k, "emergence_epoch": np.digitize(k, [0.3, 0.6, 0.9]) * 3 + 1}
        )
        table["iv_epoch_0"], table["readable_at_init"] = 0.5 - k, (k < 0.1).astype(float)
        store.write_table(table, files["emergence"])
        sediment = pd.DataFrame({"feature": range(K), "complexity": k, "k_epoch_1": first, "k_epoch_12": k})
        store.write_table(sediment, files["sediment"])
    elif kind == "fv":
        _write_fv(unit, rng)
    elif kind == "masks":
        robust = unit["facts"]["augment"] == "pgd"
        radial = rng.uniform(0.1, 0.2, (32, 8))
        radial[:, :2] += 0.2 if robust else 0.0
        attrs = {
            "clean_acc": 0.95,
            "masked_acc": 0.945,
            "complement_acc": 0.12,
            "support": 0.4,
            "criterion_met": True,
            "probe_acc": 0.8,
            "probe_acc_shuffled": 0.2,
        }
        labels = np.arange(300) % 10
        clean = np.where(rng.uniform(size=300) < 0.95, labels, (labels + 1) % 10)
        masked = clean.copy()
        masked[np.flatnonzero(clean != labels)[:1]] = 0  # one wrong answer changes (still wrong or now right)
        comp = np.where(rng.uniform(size=300) < 0.12, labels, (labels + 1) % 10)
        arrays = {
            "labels": labels,
            "predictions": {"clean": clean, "masked": masked, "complement": comp, "labels": labels},
            "indices": np.arange(32),
            "image_masks": rng.uniform(0, 1, (32, 1, 8, 8)),
            "image_converged": np.arange(32) < 30,
            "bands": {"radial_images": radial},
        }
        store.write_h5(files["masks"], "fourier_masks", arrays, attrs)
    elif kind == "maps":
        maps = rng.uniform(0, 1, (2, 16, 1, 8, 8))
        arrays = {"essential": maps[0], "adversarial": maps[1], "paired": np.ones(16, bool), "id_perm": np.ones(20)}
        store.write_h5(files["maps"], "frequency_maps", arrays, {})
        row = {
            "idcor": 0.8,
            "p_value": 1 / 21,
            "p_value_stratified": 1 / 21,
            "cosine": 0.3,
            "svcca": 0.4,
            "n_pairs": 16,
            "pool": 1,
            "p_value_authors": 0.01,
            "support_median_essential": 12.0,
            "support_median_adversarial": 20.0,
            "dc_only_essential": 0.0,
            "dc_only_adversarial": 0.0,
            "support_min": 4,
            "support_ok": True,
        }
        store.write_table(pd.DataFrame([row]), files["table"])
    elif kind == "idcor":
        rows = [
            {"layer_a": "block2", "layer_b": "act", "idcor": 0.85, "p_value": 1.0, "p_value_stratified": 0.048},
            {"layer_a": "pool", "layer_b": "act", "idcor": 0.9, "p_value": 0.048, "p_value_stratified": 0.048},
        ]
        table = pd.DataFrame(rows).assign(null_below=[True, False], n_perm=20)
        store.write_table(table, files["table"])
    elif kind == "theory" and unit["seed"] == 0:  # one set of files holds every initialization
        s = 2
        store.write_h5(files["network"], "theory_network", {"optimum": np.array([0.99, 0.98])}, {})
        store.write_h5(files["flat_network"], "theory_network", {"optimum": np.array([0.5, 0.51])}, {})
        base = {"random_features_optimum": np.array([0.75, 0.74]), "ntk_optimum": np.array([0.73, 0.72])}
        store.write_h5(files["baselines"], "theory_baselines", {**base, "linear": 0.81, "svm": 0.75}, {})
        cos = np.full((4, s, 40), 0.995)
        arrays = {
            "stages": np.array(["init", "step1", "step2", "end"], dtype="S"),
            "aligned_fraction": (cos > 0.99).mean(2),
            "cosines": cos,
            "probe": np.array([[0.52, 0.5], [0.99, 1.0]]),
        }
        store.write_h5(files["alignment"], "theory_alignment", arrays, {})
        for data in ("data", "flat_data"):
            store.write_h5(files[data], "dataset", {"test": {"y": np.arange(1000) % 2}}, {})


def _write_fv(unit: dict[str, Any], rng: np.random.Generator) -> None:
    files, name = unit["files"], unit["experiment"]
    logits = name != "conv"
    n_f = N_F if logits else 6
    n = 20
    angles = {
        "angle_prediction": rng.uniform(5, 15, n),
        "angle_prediction_full": rng.uniform(40, 70, n),
        "angle_response": rng.uniform(35, 55, n),
        "angle_random": rng.uniform(80, 100, n),
    }
    store.write_table(pd.DataFrame({"canonical": False, "stationary": True, **angles}), files["ifv"])
    ssim = {"target": np.full(8, 0.9), "prediction": rng.uniform(0.8, 0.95, 8), "response": rng.uniform(0.2, 0.5, 8)}
    store.write_h5(files["reoptimize"], "fv_reoptimize", {"ssim": ssim}, {})
    config = {"aggregation": "identity" if logits else "maxpool_mean", "layer": "fc" if logits else "block3.1"}
    store.write_h5(files["realizations"], "fv_realizations", {"responses": np.ones((n, n_f))}, {"config": config})
    excluded = [4] if name == "no4" else []
    classes = [str(c) for c in range(N_F)]
    store.write_h5(files["data"], "dataset", {}, {"classes": classes, "config": {"exclude_classes": excluded}})
    ones, e4 = np.ones(n_f), np.eye(n_f)[4]
    spaces = [_basis_without(n_f, [ones]), _basis_without(n_f, [ones, e4])]
    arrays = {"dim": np.array([n_f - 1, n_f - 2]), "bases": {f"space_{i}": b for i, b in enumerate(spaces)}}
    store.write_h5(files["critical_space"], "fv_critical_space", arrays, {})


@pytest.fixture()
def run(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """A fake run in ``tmp_path`` (the working directory): the plan of RAW and its files."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        units = plan(expand(RAW))
        rng = np.random.default_rng(0)
        for unit in units:
            write_unit(unit, rng)
        yield tmp_path, units
    finally:
        os.chdir(cwd)


def _verdicts(units: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    table = evaluate(units)
    return {(row.claim, row.experiment): row.verdict for row in table.itertuples()}


EXPECTED = {
    ("complexity_importance", "planted"): "reproduced",
    ("complexity_sensitivity", "planted"): "reproduced",
    ("complexity_redundancy", "planted-res"): "reproduced",
    ("complexity_localization", "planted"): "reproduced",
    ("dictionary_keeps_accuracy", "planted"): "reproduced",
    ("planted_factor_order", "planted"): "reproduced",
    ("flow_retention", "planted-res"): "reproduced",
    ("flow_skip_share_cka", "planted-res"): "reproduced",
    ("simple_first", "planted"): "reproduced",
    ("features_sediment", "planted"): "reproduced",
    ("ifv_angle", "logits"): "reproduced",
    ("ifv_beats_response", "conv"): "reproduced",
    ("response_beats_random", "no4"): "reproduced",
    ("ifv_exact_within_c", "logits"): "reproduced",
    ("ifv_exact_within_c", "conv"): "not applicable",  # not at the logits
    ("reoptimize_ssim", "logits"): "reproduced",
    ("critical_space_ones", "logits"): "reproduced",
    ("critical_space_ones", "conv"): "not applicable",
    ("critical_space_excluded_class", "no4"): "reproduced",
    ("critical_space_excluded_class", "logits"): "not applicable",  # trained on every class
    ("masked_accuracy", "cnn"): "reproduced",
    ("mask_complement_chance", "cnn-pgd"): "reproduced",
    ("robust_masks_low_frequency", "cnn-pgd"): "reproduced",
    ("robust_masks_low_frequency", "cnn"): "not applicable",  # the reference itself
    ("mask_class_probe", "cnn"): "reproduced",
    ("maps_idcor", "cnn"): "reproduced",
    ("maps_linear_below_idcor", "cnn"): "reproduced",
    ("layer_idcor", "planted"): "reproduced",
    ("network_beats_fixed_features", "shi"): "reproduced",
    ("unstructured_at_chance", "shi"): "reproduced",
    ("features_after_step2", "shi"): "reproduced",
    ("neurons_aligned", "shi"): "reproduced",
}


def test_a_fake_run_as_the_papers_found_gives_every_claim_its_verdict(run):
    _, units = run
    table = evaluate(units)
    assert list(table.columns) == COLUMNS
    assert set(table["claim"]) == {c.id for c in CLAIMS}
    verdicts = {(row.claim, row.experiment): row.verdict for row in table.itertuples()}
    assert {key: verdicts.get(key) for key in EXPECTED} == EXPECTED
    planted = table[(table.claim == "complexity_importance") & (table.experiment == "planted")].iloc[0]
    assert planted.seeds == "0 1" and planted.spread_low <= planted.value <= planted.spread_high
    assert "2 seeds" in planted.reason and planted.figure == "results/planted/complexity/figures/importance.png"
    shi = table[table.claim == "neurons_aligned"].iloc[0]
    assert shi.seeds == "0 1" and shi.figure == "results/theory/figures/alignment.png"
    assert "1 seed" in table[(table.claim == "flow_retention")].iloc[0].reason  # resnet: one training seed


def test_changing_a_stored_value_changes_the_verdict(run):
    root, units = run
    before = _verdicts(units)
    # importance rising with K on both seeds of planted: significantly the other way
    for name in ("planted", "planted@s1"):
        path = root / f"results/{name}/complexity/features.parquet"
        table = pd.read_parquet(path)
        table["importance_abs"] = table["complexity"] + 0.01 * np.arange(K) / K
        store.write_table(table, path.with_suffix(".csv"), path)
    # on one seed only, the PGD masks' low-frequency share goes the other way: the seeds disagree
    path = root / "results/frequency/models/cnn-pgd@s1/masks.h5"
    data, attrs = store.read_h5(path), store.read_attrs(path)
    data["bands"]["radial_images"][:, :2] -= 0.4
    store.write_h5(path, "fourier_masks", data, {k: v for k, v in attrs.items() if not k.startswith("featflow_")})
    # maps that hold only the DC term (median support 1 < min_support 4): the precondition fails (on both seeds)
    for name in ("cnn", "cnn@s1"):
        path = root / f"results/frequency/models/{name}/maps.csv"
        table = pd.read_csv(path).assign(
            support_median_essential=1.0, support_median_adversarial=1.0, dc_only_essential=0.97, support_ok=False
        )
        store.write_table(table, path)
    # a DN4cl network whose 8-dim space's complement misses e_4
    path = root / "results/fv/no4/critical_space.h5"
    data = store.read_h5(path)
    data["bases"]["space_1"] = _basis_without(N_F, [np.ones(N_F), np.eye(N_F)[7]])
    store.write_h5(path, "fv_critical_space", data, {})
    # the second seed's masked accuracy drops 5 points
    path = root / "results/frequency/models/cnn@s1/masks.h5"
    data, attrs = store.read_h5(path), store.read_attrs(path)
    data["predictions"]["masked"][:15] = (data["labels"][:15] + 1) % 10
    store.write_h5(path, "fourier_masks", data, {k: v for k, v in attrs.items() if not k.startswith("featflow_")})
    after = evaluate(units).set_index(["claim", "experiment"])
    changed = {
        ("complexity_importance", "planted"): "not reproduced",
        ("robust_masks_low_frequency", "cnn-pgd"): "inconclusive",
        ("maps_idcor", "cnn"): "not applicable",
        ("maps_linear_below_idcor", "cnn"): "not applicable",
        ("critical_space_excluded_class", "no4"): "not reproduced",
        ("masked_accuracy", "cnn"): "inconclusive",
    }
    assert {key: after.loc[key, "verdict"] for key in changed} == changed
    assert all(before[key] == "reproduced" for key in changed)
    assert "disagree in sign" in after.loc[("robust_masks_low_frequency", "cnn-pgd"), "reason"]
    assert "a few gains, not frequencies" in after.loc[("maps_idcor", "cnn"), "reason"]
    unchanged = {key: word for key, word in before.items() if key not in changed}
    assert {key: after.loc[key, "verdict"] for key in unchanged} == unchanged


def test_preconditions_read_from_the_files(run):
    root, units = run
    # a data-set mask that keeps every frequency has no complement to test
    for name in ("cnn", "cnn@s1"):
        path = root / f"results/frequency/models/{name}/masks.h5"
        data, attrs = store.read_h5(path), store.read_attrs(path)
        attrs = {k: v for k, v in attrs.items() if not k.startswith("featflow_")}
        store.write_h5(path, "fourier_masks", data, {**attrs, "support": 1.0})
    # a permutation test that cannot reach p 0.05
    path = root / "results/planted/frequency/idcor_layers.csv"
    store.write_table(pd.read_csv(path).assign(n_perm=5), path)
    after = evaluate(units).set_index(["claim", "experiment"])
    row = after.loc[("mask_complement_chance", "cnn")]
    assert row.verdict == "not applicable" and "blank image" in row.reason and "precondition:" in row.reason
    assert after.loc[("layer_idcor", "planted"), "verdict"] == "inconclusive"  # planted@s1 still has 20
    assert "cannot reach" in after.loc[("layer_idcor", "planted"), "reason"]


def test_unconverged_image_masks_leave_the_radial_claim_not_applicable(run):
    """Issue 27: band statistics of masks stopped before the stopping rule still move; only images whose masks
    converged under both networks are compared."""
    root, units = run
    for name in ("cnn-pgd", "cnn-pgd@s1"):
        path = root / f"results/frequency/models/{name}/masks.h5"
        data, attrs = store.read_h5(path), store.read_attrs(path)
        data["image_converged"][:] = np.arange(32) < 10
        store.write_h5(path, "fourier_masks", data, {k: v for k, v in attrs.items() if not k.startswith("featflow_")})
    row = evaluate(units).set_index(["claim", "experiment"]).loc[("robust_masks_low_frequency", "cnn-pgd")]
    assert row.verdict == "not applicable" and "10 of 32 images have converged" in row.reason


def test_a_mask_that_missed_the_criterion_leaves_the_complement_claim_not_applicable(run):
    """Issue 27: the complement is that of the essential frequencies only for a mask that kept 99% of the clean
    accuracy; a mask that never did (flagged criterion_met False) is returned, but its complement is no test."""
    root, units = run
    for name in ("cnn-pgd", "cnn-pgd@s1"):
        path = root / f"results/frequency/models/{name}/masks.h5"
        data, attrs = store.read_h5(path), store.read_attrs(path)
        attrs = {k: v for k, v in attrs.items() if not k.startswith("featflow_")}
        store.write_h5(path, "fourier_masks", data, {**attrs, "criterion_met": False})
    table = evaluate(units).set_index(["claim", "experiment"])
    row = table.loc[("mask_complement_chance", "cnn-pgd")]
    assert row.verdict == "not applicable" and "never kept 99%" in row.reason
    assert table.loc[("mask_complement_chance", "cnn"), "verdict"] == "reproduced"


def test_the_flow_claim_reads_the_main_branch_ablation(run):
    """flow_retention is judged on rho(K, mean code retention): retention rising with K is the other way; a flow
    table without the ablation's column makes the claim not applicable."""
    root, units = run
    path = root / "results/planted-res/complexity/flow.csv"
    table = pd.read_csv(path)
    store.write_table(table.assign(retention_mean=table["complexity"]), path)
    assert evaluate(units).set_index(["claim", "experiment"]).loc[("flow_retention", "planted-res"), "verdict"] == (
        "not reproduced"
    )
    store.write_table(table.drop(columns="retention_mean"), path)
    row = evaluate(units).set_index(["claim", "experiment"]).loc[("flow_retention", "planted-res")]
    assert row.verdict == "not applicable" and "main-branch ablation not run" in row.reason


def test_adding_a_seed_adds_only_its_replicates_files():
    two = inputs(plan(expand(RAW)))
    raw = copy.deepcopy(RAW)
    raw["models"]["cnn"]["train"]["seeds"] = [0, 1, 2]
    three = inputs(plan(expand(raw)))
    assert two == [p for p in three if p in two] and set(two) < set(three)
    assert all("@s2" in p for p in set(three) - set(two))
    assert "results/planted@s2/complexity/features.parquet" in three
    assert "results/frequency/models/cnn@s2/masks.h5" in three and "results/fv/conv@s2/ifv.csv" in three
    # a branch off: its claims read nothing and say so
    raw = {key: value for key, value in RAW.items() if key != "theory"}
    assert not [p for p in inputs(plan(expand(raw))) if "theory" in p]


def test_every_registered_claim_appears_on_the_landing_page(run):
    root, units = run
    write_claims(units, root / "results/claims.csv")
    table = write_summary([], root / "summary.rst", root / "summary.csv", root / "results/claims.csv")
    page = (root / "summary.rst").read_text()
    assert page.startswith("Claims of the papers")
    head = page.split("Headline numbers\n=====")[0]
    for claim in CLAIMS:
        assert f"* - {claim.id.replace('_', chr(92) + '_')}: " in head, claim.id
    rows = [line for line in head.splitlines() if line.startswith("   * - ")]
    assert len(rows) == len(CLAIMS) + 1  # one row per claim (and the header): it fits one screen
    assert "planted: ✓ reproduced" in head and "conv: – not applicable" in head
    assert "Headline numbers\n=====" in page and table.empty
    # without any experiment of its kind a claim still has its row, saying why
    units = [u for u in units if u["kind"] != "theory"]
    table = evaluate(units)
    row = table[table.claim == "neurons_aligned"].iloc[0]
    assert row.verdict == "not applicable" and "no theory in this run's config" in row.reason
