"""Stage entry points of the theory branch: one call per rule, reading and writing through featflow.store.

Files (kind): ``network.h5`` (theory_network), ``baselines.h5`` (theory_baselines), ``alignment.h5``
(theory_alignment), one each per data set; the accuracy table and the two figures over both families.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featflow import store
from featflow.data.shi import ShiData, design_gamma, linear_ceiling, load_shi
from featflow.theory.alignment import feature_cosines, linear_probe, mds_map, sample_direction, unit_rows
from featflow.theory.fixed_features import Grid, svm_optimum, train_baselines
from featflow.theory.two_layer import (
    Params,
    TheorySpec,
    eval_grid,
    hidden,
    init_params,
    schedule_constants,
    train_network,
)

log = logging.getLogger(__name__)

STAGES = ("init", "step1", "step2", "end")
# Cosine above which a neuron counts as sitting on an effective feature (SPEC 4.3).
ALIGNED = 0.99


def _setup(spec: TheorySpec, data: ShiData, seed: int) -> tuple[Params, dict[str, float]]:
    """The shared initialization (same seed -> the same networks in the train and baseline rules)."""
    consts = schedule_constants(spec, data.spec.k, data.sigma2, design_gamma(data.spec))
    init = init_params(
        spec.m, data.train.x.shape[1], data.spec.k, consts["sigma_a"], spec.seeds, np.random.default_rng(seed)
    )
    return init, consts


def _params_tree(p: Params) -> dict[str, np.ndarray]:
    return {"W": p.W.astype(np.float32), "b": p.b, "a": p.a, "c": p.c}


def _labels(data: ShiData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return data.train.x, data.train.y.astype(float), data.test.x, data.test.y.astype(float)


def train_to_h5(
    spec_dict: Mapping[str, Any], data_path: str | Path, out: str | Path, seed: int, attrs: Mapping[str, Any]
) -> None:
    """Rule theory_train: the network on one data set, all seeds; curves and parameter snapshots."""
    spec, data = TheorySpec.from_dict(spec_dict), load_shi(data_path)
    init, consts = _setup(spec, data, seed)
    x, y, x_test, y_test = _labels(data)
    run = train_network(spec, init, x, y, x_test, y_test, consts)
    arrays = {
        "steps": run.steps,
        "test_acc": run.test_acc,
        "train_acc": run.train_acc,
        "snapshots": {name: _params_tree(p) for name, p in run.snapshots.items()},
    }
    if spec.feature_lr_scale == 0:  # W, b frozen after step 2: the output layer is convex, solve it too
        step2 = run.snapshots["step2"]
        best = svm_optimum(
            hidden(step2, x)[0], hidden(step2, x_test)[0], y, y_test, Grid.from_spec(spec, seed), name="network"
        )
        arrays["optimum"], arrays["optimum_choice"] = best.accuracy, best.record()
    store.write_h5(out, "theory_network", arrays, {**attrs, **consts, "structured": data.spec.structured})


def baselines_to_h5(
    spec_dict: Mapping[str, Any], data_path: str | Path, out: str | Path, seed: int, attrs: Mapping[str, Any]
) -> None:
    """Rule theory_baselines: random features, NTK, linear on x and RBF SVM on one data set, each at its
    cross-validated optimum (the chosen C, gamma and grid-edge flags under ``choice``)."""
    spec, data = TheorySpec.from_dict(spec_dict), load_shi(data_path)
    init, _ = _setup(spec, data, seed)
    grid = eval_grid(spec.small_steps(), spec.eval_every)
    run = train_baselines(spec, init, *_labels(data), grid, seed)
    arrays = {
        "steps": run.steps,
        "random_features": run.random_features,
        "ntk": run.ntk,
        "random_features_optimum": run.optima["random_features"].accuracy,
        "ntk_optimum": run.optima["ntk"].accuracy,
        "linear": np.float64(run.optima["linear"].accuracy[0]),
        "linear_ceiling": np.float64(linear_ceiling(data.spec)),
        "svm": np.float64(run.optima["rbf_svm"].accuracy[0]),
        "choice": {name: optimum.record() for name, optimum in run.optima.items()},
    }
    store.write_h5(out, "theory_baselines", arrays, {**attrs, "structured": data.spec.structured})


def alignment_to_h5(
    spec_dict: Mapping[str, Any],
    network_path: str | Path,
    data_path: str | Path,
    out: str | Path,
    seed: int,
    attrs: Mapping[str, Any],
) -> None:
    """Rule theory_alignment: cosines to the effective features and MDS maps at init, steps 1, 2 and the end
    (the first ``snapshot_seeds`` seeds), and linear probes on the hidden features after steps 1 and 2."""
    spec, data = TheorySpec.from_dict(spec_dict), load_shi(data_path)
    snaps = store.read_h5(network_path, "theory_network")["snapshots"]
    effective = data.effective_features
    params = {name: Params(**{k: np.asarray(v, float) for k, v in snaps[name].items()}) for name in STAGES}
    cosines = np.stack([feature_cosines(params[name].W, effective) for name in STAGES])  # (4, S, 2m)
    shown = min(spec.snapshot_seeds, cosines.shape[1])
    maps = [[mds_map(params[name].W[s], effective, seed) for name in STAGES] for s in range(shown)]
    labels = _labels(data)
    raw = [linear_probe(params[name], *labels) for name in ("step1", "step2")]
    standardized = linear_probe(params["step1"], *labels, standardize=True)[0]  # step 2 needs no scaling
    probes = np.stack([acc for acc, _ in raw])
    # Without structure the step-2 neurons follow the training sample's E[y x]: compare it with the test set's.
    v_train, v_test = sample_direction(labels[0], labels[1]), sample_direction(labels[2], labels[3])
    to_train = np.abs(unit_rows(params["step2"].W) @ v_train)  # (S, 2m)
    arrays = {
        "stages": np.array(STAGES),
        "cosines": cosines,
        "aligned_fraction": (cosines > ALIGNED).mean(axis=2),
        "mds": np.array([[c for c, _ in row] for row in maps]),
        "stress": np.array([[s for _, s in row] for row in maps]),
        "probe": probes,
        "probe_constant": np.stack([constant for _, constant in raw]),
        "probe_standardized_step1": standardized,
        "probe_stages": np.array(["step1", "step2"]),
        "class_balance": np.float64((labels[3] > 0).mean()),  # share of +1 in the test labels
        "train_direction_cosine": to_train.mean(axis=1),
        "train_test_direction_cosine": np.float64(v_train @ v_test),
        "structured": np.bool_(data.spec.structured),
    }
    log.info(
        "alignment: mean cosine by stage %s; probe after step 1 %s (standardized %s), step 2 %s; step-2 neurons "
        "to the training E[y x] %.3f, its cosine with the test set's %.3f",
        np.round(cosines.mean(axis=(1, 2)), 3),
        np.round(probes[0], 3),
        np.round(standardized, 3),
        np.round(probes[1], 3),
        float(to_train.mean()),
        float(v_train @ v_test),
    )
    store.write_h5(out, "theory_alignment", arrays, {**attrs, "structured": data.spec.structured})


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
