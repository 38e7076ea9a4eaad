"""Bootstrap intervals of Spearman's rho, K's stability across NMF seeds, and the report's landing page."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy.stats import spearmanr

from featflow import store
from featflow.complexity.pipeline import seed_stability
from featflow.metrics.stats import spearman_ci
from featflow.summary import branch_of, write_summary


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
    pd.testing.assert_frame_equal(pd.read_csv("summary.csv").astype(str), table.reset_index(drop=True).astype(str))
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
