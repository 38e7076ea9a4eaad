"""The theory branch's outputs of the tiny DAG run: files, shapes, provenance, and the headline property
(at tiny size: d 40, D 20, k 3, m 20, 400 training samples, 60 small steps)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featflow import store


def test_theory_files_shapes_and_provenance(dag_run):
    for name in ("shi", "shi-flat"):
        root = dag_run / "results/theory" / name
        net = store.read_h5(root / "network.h5", "theory_network")
        base = store.read_h5(root / "baselines.h5", "theory_baselines")
        align = store.read_h5(root / "alignment.h5", "theory_alignment")
        steps = net["steps"]
        assert steps[:3].tolist() == [0, 1, 2] and steps[-1] == 62 and np.all(np.diff(steps) > 0)
        assert net["test_acc"].shape == (2, steps.size) and base["ntk"].shape == (2, steps.size)
        np.testing.assert_array_equal(base["steps"], steps)
        assert net["snapshots"]["step2"]["W"].shape == (2, 40, 40)
        assert align["cosines"].shape == (4, 2, 40) and align["mds"].shape == (1, 4, 42, 2)
        assert align["probe"].shape == (2, 2)
        for path in (root / "network.h5", root / "baselines.h5", root / "alignment.h5"):
            attrs = store.read_attrs(path)
            assert attrs["stage"] == "theory" and len(attrs["code_version"]) == 16
            assert attrs["config"]["m"] == 20 and attrs["structured"] == (name == "shi")
    for figure in ("accuracy", "alignment"):
        assert (dag_run / f"results/theory/figures/{figure}.png").stat().st_size > 10_000


def test_theory_headline_at_tiny_size(dag_run):
    table = pd.read_csv(dag_run / "results/theory/accuracy.csv").set_index(["family", "model"])["accuracy_mean"]
    assert len(table) == 8
    assert table["structured", "network"] > 0.95
    for model in ("random_features", "ntk", "rbf_svm"):
        assert table["structured", "network"] - table["structured", model] > 0.15
        assert abs(table["unstructured", model] - 0.5) < 0.1
    assert abs(table["unstructured", "network"] - 0.5) < 0.1
    align = store.read_h5(dag_run / "results/theory/shi/alignment.h5", "theory_alignment")
    assert align["cosines"][2].mean() > align["cosines"][0].mean() + 0.3  # neurons turn to +-sum_A M_j
    assert align["probe"][0].max() < 0.6 and align["probe"][1].min() > 0.9
