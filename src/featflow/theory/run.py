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
from featflow.theory.alignment import feature_cosines, linear_probe, mds_map
from featflow.theory.fixed_features import train_baselines
from featflow.theory.shi_data import ShiData, design_gamma, load_shi
from featflow.theory.two_layer import Params, TheorySpec, eval_grid, init_params, schedule_constants, train_network

log = logging.getLogger(__name__)

STAGES = ("init", "step1", "step2", "end")
# Cosine above which a neuron counts as sitting on an effective feature (SPEC 4.3).
ALIGNED = 0.99


def check_theory_config(config: Mapping[str, Any]) -> TheorySpec:
    """The validated ``theory`` section as a spec; its data set names must be ``shi`` data sets of the right
    family (ValueError naming the key otherwise)."""
    spec = TheorySpec.from_dict(config["theory"])
    datasets = config["datasets"]
    for key, structured in (("structured", True), ("unstructured", False)):
        name = getattr(spec, key)
        if name not in datasets or datasets[name]["kind"] != "shi":
            shi = sorted(n for n, d in datasets.items() if d["kind"] == "shi")
            raise ValueError(
                f"config key 'theory.{key}': '{name}' is not a data set of kind shi; expected one of {shi}"
            )
        if datasets[name]["shi"]["structured"] is not structured:
            raise ValueError(
                f"config key 'theory.{key}': data set '{name}' has shi.structured = "
                f"{datasets[name]['shi']['structured']}, expected {structured}"
            )
    return spec


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
    run = train_network(spec, init, *_labels(data), consts)
    arrays = {
        "steps": run.steps,
        "test_acc": run.test_acc,
        "train_acc": run.train_acc,
        "snapshots": {name: _params_tree(p) for name, p in run.snapshots.items()},
    }
    store.write_h5(out, "theory_network", arrays, {**attrs, **consts, "structured": data.spec.structured})


def baselines_to_h5(
    spec_dict: Mapping[str, Any], data_path: str | Path, out: str | Path, seed: int, attrs: Mapping[str, Any]
) -> None:
    """Rule theory_baselines: random features, NTK and RBF SVM on one data set."""
    spec, data = TheorySpec.from_dict(spec_dict), load_shi(data_path)
    init, _ = _setup(spec, data, seed)
    grid = eval_grid(spec.small_steps(), spec.eval_every)
    run = train_baselines(spec, init, *_labels(data), grid)
    arrays = {"steps": run.steps, "random_features": run.random_features, "ntk": run.ntk, "svm": np.float64(run.svm)}
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
    probes = np.stack([linear_probe(params[name], *_labels(data)) for name in ("step1", "step2")])
    arrays = {
        "stages": np.array(STAGES),
        "cosines": cosines,
        "aligned_fraction": (cosines > ALIGNED).mean(axis=2),
        "mds": np.array([[c for c, _ in row] for row in maps]),
        "stress": np.array([[s for _, s in row] for row in maps]),
        "probe": probes,
        "probe_stages": np.array(["step1", "step2"]),
    }
    log.info(
        "alignment: mean cosine by stage %s; probe after step 1 %s, step 2 %s",
        np.round(cosines.mean(axis=(1, 2)), 3),
        np.round(probes[0], 3),
        np.round(probes[1], 3),
    )
    store.write_h5(out, "theory_alignment", arrays, {**attrs, "structured": data.spec.structured})


def accuracy_table(
    networks: Sequence[str | Path], baselines: Sequence[str | Path], families: Sequence[str]
) -> pd.DataFrame:
    """Final test accuracies, one row per family x model: mean, std and min over seeds."""
    rows = []
    for family, net_path, base_path in zip(families, networks, baselines, strict=False):
        net, base = store.read_h5(net_path, "theory_network"), store.read_h5(base_path, "theory_baselines")
        finals = {
            "network": net["test_acc"][:, -1],
            "random_features": base["random_features"][:, -1],
            "ntk": base["ntk"][:, -1],
            "rbf_svm": np.atleast_1d(base["svm"]),
        }
        for model, acc in finals.items():
            rows.append(
                {
                    "family": family,
                    "model": model,
                    "accuracy_mean": float(acc.mean()),
                    "accuracy_std": float(acc.std()),
                    "accuracy_min": float(acc.min()),
                    "seeds": acc.size,
                }
            )
    return pd.DataFrame(rows)


def accuracy_outputs(
    networks: Sequence[str], baselines: Sequence[str], families: Sequence[str], figure: str | Path, table: str | Path
) -> None:
    """Rule theory_figure_accuracy: the test-accuracy-vs-steps figure and the table of final accuracies."""
    from featflow.plots.theory import accuracy_figure

    curves = [
        (store.read_h5(n, "theory_network"), store.read_h5(b, "theory_baselines"))
        for n, b in zip(networks, baselines, strict=False)
    ]
    store.save_figure(accuracy_figure(curves, families), figure)
    store.write_table(accuracy_table(networks, baselines, families), table)


def alignment_outputs(alignments: Sequence[str], families: Sequence[str], figure: str | Path) -> None:
    """Rule theory_figure_alignment: the MDS maps of the neurons, one row per family."""
    from featflow.plots.theory import alignment_figure

    store.save_figure(alignment_figure([store.read_h5(p, "theory_alignment") for p in alignments], families), figure)
