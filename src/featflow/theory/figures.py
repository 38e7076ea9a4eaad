"""The theory branch's figures and table (rules theory_figure_accuracy, theory_figure_alignment), apart from
its training code: reading the branch's files needs only numpy and pandas (drawing: featflow.plots), so these
jobs import neither scikit-learn nor scipy (``tests/unit/test_imports.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featflow import store


def final_accuracies(net: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per model: (reported accuracy per seed, end of its GD curve per seed). Models convex in their trained
    weights are reported at their optimum; the network at its optimum when its features are frozen."""
    nan = np.array([np.nan])
    return {
        "network": (np.asarray(net.get("optimum", net["test_acc"][:, -1])), net["test_acc"][:, -1]),
        "random_features": (base["random_features_optimum"], base["random_features"][:, -1]),
        "ntk": (base["ntk_optimum"], base["ntk"][:, -1]),
        "linear": (np.atleast_1d(base["linear"]), nan),
        "rbf_svm": (np.atleast_1d(base["svm"]), nan),
    }


def accuracy_table(
    networks: Sequence[str | Path], baselines: Sequence[str | Path], families: Sequence[str]
) -> pd.DataFrame:
    """Final test accuracies, one row per family x model: mean, std and min over seeds (at the optimum for the
    convex models), the mean end of the GD curve, and the analytic linear ceiling of the family."""
    rows = []
    for family, net_path, base_path in zip(families, networks, baselines, strict=True):
        net, base = store.read_h5(net_path, "theory_network"), store.read_h5(base_path, "theory_baselines")
        for model, (acc, gd_end) in final_accuracies(net, base).items():
            rows.append(
                {
                    "family": family,
                    "model": model,
                    "accuracy_mean": float(acc.mean()),
                    "accuracy_std": float(acc.std()),
                    "accuracy_min": float(acc.min()),
                    "gd_end_mean": float(np.mean(gd_end)),
                    "linear_ceiling": float(base["linear_ceiling"]),
                    "seeds": acc.size,
                }
            )
    return pd.DataFrame(rows)


PAPER_ACCURACY = {
    ("structured", "network"): "~100%",
    ("structured", "random_features"): "clearly lower",
    ("structured", "ntk"): "clearly lower",
    ("structured", "rbf_svm"): "clearly lower",
    ("structured", "linear"): "ceiling ~84%",
}


def accuracy_numbers(table: pd.DataFrame) -> dict[str, str]:
    """The accuracy figure's headline numbers: this run's final accuracies beside what the paper found."""
    numbers = {}
    for row in table.itertuples():
        paper = PAPER_ACCURACY.get((row.family, row.model), "~50%" if row.family == "unstructured" else None)
        value = f"{row.accuracy_mean:.3f}"
        numbers[f"{row.family} {row.model}"] = f"{value} (paper: {paper})" if paper else value
    for family, ceiling in table.groupby("family")["linear_ceiling"].first().items():
        numbers[f"{family} linear ceiling (analytic)"] = f"{ceiling:.3f}"
    return numbers


def choice_numbers(baselines: Sequence[Mapping[str, Any]], families: Sequence[str]) -> dict[str, str]:
    """The cross-validated choice of every baseline per seed: C trace(K)/n (and gamma in units of 1/(d Var(x))),
    and a flag when a value sits at the edge of its grid (the baseline may be below its optimum)."""
    numbers = {}
    for base, family in zip(baselines, families, strict=True):
        for model, choice in base.get("choice", {}).items():
            text = "C trace(K)/n " + ", ".join(f"{v:.3g}" for v in np.atleast_1d(choice["C_scale"]))
            gamma = np.atleast_1d(choice["gamma"])
            if np.isfinite(gamma).all():
                text += "; gamma " + ", ".join(f"{v:.3g}" for v in gamma)
            edges = [str(e) for e in np.atleast_1d(choice["edge"]) if str(e)]
            numbers[f"{family} {model} choice"] = text + (f" (AT A GRID EDGE: {'; '.join(edges)})" if edges else "")
    return numbers


def accuracy_outputs(
    networks: Sequence[str], baselines: Sequence[str], families: Sequence[str], figure: str | Path, table: str | Path
) -> None:
    """Rule theory_figure_accuracy: the test-accuracy-vs-steps figure and the table of final accuracies."""
    from featflow.plots.theory import accuracy_figure

    curves = [
        (store.read_h5(n, "theory_network"), store.read_h5(b, "theory_baselines"))
        for n, b in zip(networks, baselines, strict=True)
    ]
    frame = accuracy_table(networks, baselines, families)
    numbers = {**accuracy_numbers(frame), **choice_numbers([base for _, base in curves], families)}
    store.save_figure(accuracy_figure(curves, families), figure, numbers)
    store.write_table(frame, table)


def alignment_numbers(alignments: Sequence[Mapping[str, Any]], families: Sequence[str]) -> dict[str, str]:
    """The alignment figure's headline numbers (all seeds): aligned fractions, probes, the unstructured check."""
    numbers = {}
    for data, family in zip(alignments, families, strict=True):
        stages = [str(s) for s in data["stages"]]
        frac = np.asarray(data["aligned_fraction"])  # (stages, S)
        cos = np.asarray(data["cosines"])
        paper = "all neurons" if bool(data["structured"]) else "none"
        for stage in ("step1", "step2"):
            i = stages.index(stage)
            numbers[f"{family} cos > 0.99 after {stage}"] = f"{frac[i].mean():.0%} (mean cos {cos[i].mean():.3f})"
        numbers[f"{family} cos > 0.99 after step2"] += f" (paper: {paper})"
        raw, std = np.asarray(data["probe"]), np.asarray(data["probe_standardized_step1"])
        constant = np.asarray(data["probe_constant"])[0].mean()
        numbers[f"{family} probe after step1, raw"] = (
            f"{raw[0].mean():.3f} (constant predictor in {constant:.0%} of seeds; test labels "
            f"{float(data['class_balance']):.1%} positive)" + (" (paper: ~52%)" if bool(data["structured"]) else "")
        )
        numbers[f"{family} probe after step1, standardized"] = f"{std.mean():.3f}"
        numbers[f"{family} probe after step2, raw"] = (
            f"{raw[1].mean():.3f} (paper: {'~100%' if paper == 'all neurons' else 'chance'})"
        )
        if not bool(data["structured"]):
            numbers[f"{family} step-2 neurons |cos| to training E[y x]"] = (
                f"{np.mean(data['train_direction_cosine']):.3f} (its cos with the test set's "
                f"{float(data['train_test_direction_cosine']):.3f}: noise)"
            )
    return numbers


def alignment_outputs(alignments: Sequence[str], families: Sequence[str], figure: str | Path) -> None:
    """Rule theory_figure_alignment: the MDS maps of the neurons, one row per family."""
    from featflow.plots.theory import alignment_figure

    data = [store.read_h5(p, "theory_alignment") for p in alignments]
    store.save_figure(alignment_figure(data, families), figure, alignment_numbers(data, families))
