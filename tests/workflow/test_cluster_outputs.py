"""Scale-out in the tiny DAG: tiny.yaml extracts experiment ``planted`` in 2 shards per split (one job each),
merged into the usual file, which must equal a single job's extraction."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import yaml

from featflow import store
from featflow.activations import extract_to_h5
from featflow.config import ExperimentSpec


def test_sharded_activations_equal_a_single_job(dag_run, tmp_path):
    config = yaml.safe_load((dag_run / "config/config.yaml").read_text())
    spec = ExperimentSpec.from_dict(config["experiments"]["planted"])
    assert spec.activations.shards == 2
    single = dataclasses.replace(spec.activations, shards=1)
    torch.set_num_threads(1)
    for split in spec.activations.splits:
        for shard in range(2):  # each shard was its own job, with its own log
            assert (dag_run / f"logs/activations_shard/planted_{split}_{shard}.log").is_file()
        ref = tmp_path / f"{split}.h5"
        extract_to_h5(
            dag_run / f"results/models/{spec.model}.pt",
            dag_run / f"results/data/{spec.dataset}.h5",
            split,
            spec.layers,
            single,
            ref,
            device=torch.device("cpu"),
            attrs={},
        )
        merged = store.read_h5(dag_run / f"results/planted/activations/{split}.h5", "activations")
        expected = store.read_h5(ref, "activations")
        for key in ("labels", "indices", "factors"):
            np.testing.assert_array_equal(merged[key], expected[key])
        np.testing.assert_allclose(merged["logits"], expected["logits"], rtol=1e-5, atol=1e-6)
        for name in spec.layers:
            np.testing.assert_allclose(merged["layers"][name], expected["layers"][name], rtol=1e-5, atol=1e-6)
        assert (
            store.read_attrs(dag_run / f"results/planted/activations/{split}.h5")["accuracy"]
            == store.read_attrs(ref)["accuracy"]
        )
    assert not list((dag_run / "results/planted/activations/shards").glob("*.h5"))  # temporary, removed
