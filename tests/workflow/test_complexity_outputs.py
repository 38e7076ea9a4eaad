"""Outputs of the complexity branch after the tiny DAG: shapes, provenance, the planted-factor ranking."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from featflow import store

CX = Path("results/planted/complexity")


def _k(dag_run: Path) -> int:
    return yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]["dictionary"]["k"]


def test_dictionary_and_codes(dag_run: Path) -> None:
    k = _k(dag_run)
    dic = store.read_h5(dag_run / CX / "dictionary.h5", "complexity-dictionary")
    attrs = store.read_attrs(dag_run / CX / "dictionary.h5", "complexity-dictionary")
    acts = store.read_h5(dag_run / "results/planted/activations/test.h5", "activations")
    d = acts["layers"]["act"].shape[1]
    assert dic["atoms"].shape == (k, d) and k > d and (dic["atoms"] >= 0).all()
    assert attrs["stage"] == "dictionary" and attrs["layer"] == "act" and "code_version" in attrs
    assert 0 <= attrs["relative_error"] < 0.5
    codes = store.read_h5(dag_run / CX / "codes_test.h5", "complexity-codes")["codes"]
    assert codes.shape == (acts["labels"].shape[0], k) and (codes >= 0).all()


def test_feature_table(dag_run: Path) -> None:
    k = _k(dag_run)
    table = pd.read_parquet(dag_run / CX / "features.parquet")
    assert len(table) == k and len(pd.read_csv(dag_run / CX / "features.csv")) == k
    expected = {
        "complexity",
        "iv_input",
        "iv_act",
        "redundancy_p0.5",
        "sensitivity_s0.1",
        "sensitivity_s0.5",
        "importance",
        "importance_abs",
        "hoyer",
        "usage",
    }
    assert expected <= set(table.columns)
    alive = table.dropna(subset=["complexity"])
    assert ((alive["complexity"] >= 0) & (alive["complexity"] <= 1)).all()
    assert np.allclose(alive["complexity"], 1 - alive.filter(like="iv_").mean(1))
    assert (table["importance_abs"] >= table["importance"].abs() - 1e-9).all()
    for name in ("importance", "iv_curves", "umap", "top_images"):
        assert (dag_run / CX / "figures" / f"{name}.png").stat().st_size > 1000


def test_planted_factor_ranking(dag_run: Path) -> None:
    factors = pd.read_csv(dag_run / CX / "factors.csv").set_index("factor")["complexity"]
    # SPEC 5.1: color is linear in the pooled input, orientation needs local filters, parity needs counting
    assert factors["color"] < factors["orientation"] < factors["parity"]
