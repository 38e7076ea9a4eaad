"""Training seeds as a dimension of the DAG, after the tiny DAG: tiny.yaml trains cnn-fashion at seeds 0 and 1 on
the shipped Fashion-MNIST (kind idx); each seed is its own model and experiment, and one more seed plans only its
own jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from featflow import store
from featflow.models.checkpoint import read_checkpoint
from tests.workflow.conftest import planned_jobs, snakemake


def test_each_seed_is_its_own_trained_model_and_experiment(dag_run: Path) -> None:
    first = read_checkpoint(dag_run / "results/models/cnn-fashion.pt")
    second = read_checkpoint(dag_run / "results/models/cnn-fashion@s1.pt")
    assert first["spec"]["train"]["seed"] == 0 and second["spec"]["train"]["seed"] == 1
    weights = "body.block1.0.weight"
    assert not np.allclose(first["state_dict"][weights], second["state_dict"][weights])
    acts = [
        store.read_h5(dag_run / f"results/{e}/activations/test.h5", "activations") for e in ("fashion", "fashion@s1")
    ]
    assert np.array_equal(acts[0]["labels"], acts[1]["labels"])  # the same images (the data set's draw is fixed) ...
    assert not np.allclose(acts[0]["layers"]["act"], acts[1]["layers"]["act"])  # ... through two networks
    assert store.read_attrs(dag_run / "results/fashion@s1/activations/test.h5")["seed"] is not None


def test_fashion_mnist_is_read_from_the_shipped_files(dag_run: Path) -> None:
    data = store.read_h5(dag_run / "results/data/fashion.h5")
    assert data["train"]["x"].shape == (256, 1, 16, 16) and data["test"]["x"].shape == (128, 1, 16, 16)
    assert len(set(data["test"]["y"][:10].tolist())) >= 9  # stratified order: the first rows span the classes
    checkpoint = read_checkpoint(dag_run / "results/models/cnn-fashion.pt")
    assert checkpoint["meta"]["test_acc"] > 0.2  # 4 epochs on 256 images of 10 classes: 0.34 (chance 0.1)


def test_a_third_seed_plans_only_its_own_jobs(dag_run: Path) -> None:
    config_file = dag_run / "config" / "config.yaml"
    original = config_file.read_text()
    config = yaml.safe_load(original)
    config["models"]["cnn-fashion"]["train"]["seeds"] = [0, 1, 2]
    config_file.write_text(yaml.safe_dump(config))
    try:
        result = snakemake(dag_run, "-n")
    finally:
        config_file.write_text(original)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = planned_jobs(result)
    assert planned.pop("train") == 1 and planned.pop("activations") == 1, planned
    assert set(planned) <= {"all", "summary", "claims"}, planned
