"""Bootstrap intervals of Spearman's rho, K's stability across NMF seeds, and the report's landing page."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy.stats import spearmanr

from featflow import store
from featflow.complexity.vinfo import seed_stability
from featflow.metrics.stats import spearman_ci
from featflow.summary import branch_of, experiment_of, relation_table, write_summary


def test_spearman_interval_is_scipys_rho_with_a_sensible_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    y[:5] = np.nan  # dropped pairs
    r = spearman_ci(x, y)
    ok = np.isfinite(y)
    assert r.n == 195 and abs(r.rho - spearmanr(x[ok], y[ok]).statistic) < 1e-12
    assert r.low < r.rho < r.high and 0.05 < r.high - r.low < 0.3
    wide = spearman_ci(x[:20], y[:20])
    assert wide.high - wide.low > r.high - r.low  # fewer pairs, wider interval


def test_seed_stability_matches_permuted_atoms_exactly() -> None:
    rng = np.random.default_rng(1)
    atoms = rng.random((30, 8))
    order = rng.permutation(30)
    k = rng.random(30)
    out = seed_stability(atoms, atoms[order], k, k[order])
    assert abs(out["k_seed_spearman"] - 1.0) < 1e-12 and abs(out["atom_match_cosine_median"] - 1.0) < 1e-12
    shuffled = seed_stability(atoms, atoms[order], k, rng.permutation(k))
    assert shuffled["k_seed_spearman"] < 0.6


def test_summary_gathers_every_figures_numbers_by_branch(tmp_path) -> None:
    paths = {
        "results/planted/complexity/figures/iv_curves.png": {"planted ranking": "holds", "K(color)": "0.1"},
        "results/theory/figures/accuracy.png": {"structured network": "0.99 (paper: ~100%)"},
        "results/fv/cnn/figures/angular.png": {"median angle *": "9.7"},
    }
    figures = []
    for rel, numbers in paths.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True)
        fig, _ = plt.subplots()
        store.save_figure(fig, path, numbers)
        figures.append(path.relative_to(tmp_path))
    import os

    os.chdir(tmp_path)
    table = write_summary(figures, "summary.rst", "summary.csv")
    assert len(table) == 4 and set(table["branch"]) == {"Complexity", "Theory", "FV / IFV"}
    rst = (tmp_path / "summary.rst").read_text()
    assert rst.index(".. list-table:: Complexity") < rst.index(".. list-table:: Theory")
    assert "planted ranking" in rst and r"median angle \*" in rst
    assert "planted/complexity/figures/iv\\_curves.png" in rst  # which experiment: two may be analyzed
    csv = pd.read_csv("summary.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(csv.astype(str), table.reset_index(drop=True).astype(str))
    assert branch_of("results/frequency/masks/x.png") == "Frequency"


def test_importance_fit_stays_in_the_data_range_and_iv_curves_label_their_axis() -> None:
    """Issue 12.3: a straight line through a convex decreasing cloud dips below zero importance; the isotonic
    fit cannot leave the range of the data. The I_V curves name their x axis."""
    from featflow.plots.complexity import complexity_vs_importance, iv_curves

    rng = np.random.default_rng(2)
    k = rng.random(200)
    table = pd.DataFrame({"complexity": k, "importance_abs": np.exp(-8 * k) + 0.01 * rng.random(200)})
    fig, rho = complexity_vs_importance(table)
    fitted = fig.axes[0].lines[0].get_ydata()
    assert fitted.min() >= table["importance_abs"].min() - 1e-12 and rho.rho < -0.9 and rho.high < 0
    plt.close(fig)
    table = pd.DataFrame({"complexity": k, "iv_input": 1 - k, "iv_act": np.ones(200)})
    fig = iv_curves(table, ["input", "act"])
    assert "layer" in fig.axes[0].get_xlabel()
    plt.close(fig)


def test_a_figure_that_shows_claims_carries_their_verdicts(tmp_path):
    import pandas as pd

    from featflow import store
    from featflow.summary import paper_labels

    figure = "results/planted/complexity/figures/relations.png"
    rows = [
        {"claim": "complexity_redundancy", "verdict": "not reproduced", "figure": figure},
        {"claim": "complexity_sensitivity", "verdict": "reproduced", "figure": figure},
        {"claim": "simple_first", "verdict": "reproduced", "figure": "results/planted/temporal/figures/decoding.png"},
    ]
    claims = tmp_path / "claims.csv"
    store.write_table(pd.DataFrame(rows), claims)
    label = paper_labels(claims, figure)["vs paper"]
    assert "complexity_redundancy ✗ not reproduced" in label and "complexity_sensitivity" in label
    assert "simple_first" not in label
    assert paper_labels(claims, "results/theory/figures/accuracy.png") == {}
    assert paper_labels(tmp_path / "absent.csv", figure) == {}


def test_every_relation_of_k_is_listed_for_every_experiment(tmp_path, monkeypatch) -> None:
    """Issue 26.6: each relation's rho for every analysed experiment, side by side, so that a relation whose sign
    differs between networks shows; a relation only one experiment has (feature flow) is blank for the others;
    the CSV names each number's experiment."""
    values = {"planted": "-0.28 [-0.44, -0.10]", "planted-res": "+0.27 [+0.05, +0.45]", "fashion": "+0.20 [+0.1, +0.3]"}
    paths: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        paths[f"results/{name}/complexity/figures/relations.png"] = {
            "rho(K, redundancy_p0.5)": f"{value} (paper: negative)",
            "inhibitors (Gamma < 0)": "3",
        }
        paths[f"results/{name}/complexity/figures/importance.png"] = {"rho(K, |importance|)": "-0.6 [-0.7, -0.5]"}
    paths["results/planted-res/complexity/figures/flow.png"] = {"rho(K, code retention)": "-0.49 [-0.63, -0.33]"}
    paths["results/theory/figures/accuracy.png"] = {"rho(K, not an experiment)": "1"}
    monkeypatch.chdir(tmp_path)
    for rel, numbers in paths.items():
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        fig, _ = plt.subplots()
        store.save_figure(fig, rel, numbers)
    table = write_summary(list(paths), "summary.rst", "summary.csv")
    relations = relation_table(table, list(paths))
    assert list(relations.columns) == ["relation", "paper", "planted", "planted-res", "fashion"]
    rows = relations.set_index("relation")
    assert list(rows.index) == ["rho(K, redundancy_p0.5)", "rho(K, |importance|)", "rho(K, code retention)"]
    assert rows.loc["rho(K, redundancy_p0.5)", ["planted", "planted-res", "fashion"]].tolist() == list(values.values())
    assert rows.loc["rho(K, redundancy_p0.5)", "paper"] == "negative"
    assert rows.loc["rho(K, code retention)"].tolist() == ["", "", "-0.49 [-0.63, -0.33]", ""]
    rst = Path("summary.rst").read_text()
    head = rst.index("Relations of complexity K per experiment")
    assert all(f"     - {name}" in rst[head:] for name in values) and r"+0.27 [+0.05, +0.45]" in rst[head:]
    csv = pd.read_csv("summary.csv", keep_default_na=False)
    redundancy = csv[csv["number"] == "rho(K, redundancy_p0.5)"]
    assert sorted(redundancy["experiment"]) == sorted(values) and set(csv["experiment"]) == {*values, ""}
    assert (
        experiment_of("results/fv/cnn/figures/angular.png") == "" and experiment_of("results/x/temporal/a.png") == "x"
    )


def test_the_landing_page_shows_every_dictionarys_quality(tmp_path, monkeypatch) -> None:
    """Issue 29: the quality table (one row per analyzed experiment: method, layer, R^2, mean L0, dead features,
    accuracy recovered, matched atoms of two seeds) heads the landing page, from the quality.csv files."""
    from featflow.complexity.quality import COLUMNS

    monkeypatch.chdir(tmp_path)
    paths = []
    for name, method, r2 in [("planted", "nmf", 0.99991), ("planted-sae", "topk", 0.9947)]:
        row = dict.fromkeys(COLUMNS, 0) | {"experiment": name, "method": method, "layer": "fc1", "r2": r2}
        row |= {"l0_mean": 8.0, "dead": 3, "accuracy_recovered": 1.002, "seed_cosine_median": 0.32}
        store.write_table(pd.DataFrame([row]), f"{name}.csv")
        paths.append(f"{name}.csv")
    write_summary([], "summary.rst", "summary.csv", quality=paths)
    rst = (tmp_path / "summary.rst").read_text()
    assert rst.index("Dictionary quality") < rst.index(".. list-table:: dictionaries")
    rows = rst.split(".. list-table:: dictionaries")[1]
    assert "planted-sae" in rows and "topk" in rows and "0.9947" in rows and "0.9999" in rows and "1.002" in rows
    assert rows.count("   * - ") == 3  # the header and one row per experiment
