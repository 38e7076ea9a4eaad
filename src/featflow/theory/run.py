"""Stage entry points of the theory branch: one call per rule, reading and writing through featflow.store.

Files (kind): ``network.h5`` (theory_network), ``baselines.h5`` (theory_baselines), ``alignment.h5``
(theory_alignment), one each per data set. The accuracy table and the two figures over both families are
drawn by :mod:`featflow.theory.figures`, which imports no scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

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
    spec_dict: Mapping[str, Any], data_path: str | Path, out: str | Path, *, seed: int, attrs: Mapping[str, Any]
) -> None:
    """Rule theory_train: the network on one data set, all seeds; curves and parameter snapshots."""
    spec, data = TheorySpec.from_dict(spec_dict), load_shi(data_path)
    init, consts = _setup(spec, data, seed)
    x, y, x_test, y_test = _labels(data)
    run = train_network(spec, init, x, y, x_test, y_test, consts=consts)
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
    spec_dict: Mapping[str, Any], data_path: str | Path, out: str | Path, *, seed: int, attrs: Mapping[str, Any]
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
    *,
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
        "alignment: mean cosine by stage %(cosine)s; probe after step 1 %(step1)s (standardized %(standardized)s), "
        "step 2 %(step2)s; step-2 neurons to the training E[y x] %(train).3f, its cosine with the test set's "
        "%(test).3f",
        {
            "cosine": np.round(cosines.mean(axis=(1, 2)), 3),
            "step1": np.round(probes[0], 3),
            "standardized": np.round(standardized, 3),
            "step2": np.round(probes[1], 3),
            "train": float(to_train.mean()),
            "test": float(v_train @ v_test),
        },
    )
    store.write_h5(out, "theory_alignment", arrays, {**attrs, "structured": data.spec.structured})
