"""Complexity over training after the tiny DAG: checkpoints, decoding, sedimentation, figures; adding a checkpoint
epoch plans only its jobs; on planted data at the default scale the factors emerge in their designed order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from featflow import store
from featflow.models.checkpoint import read_checkpoint
from tests.workflow.conftest import ROOT, copy_workflow, planned_jobs, snakemake

TX = Path("results/planted/temporal")


def _tiny(dag_run: Path) -> dict:
    return yaml.safe_load((dag_run / "config" / "config.yaml").read_text())


def test_checkpoints_and_decoding(dag_run: Path) -> None:
    train = _tiny(dag_run)["models"]["cnn"]["train"]
    epochs = sorted({*train["checkpoints"], train["epochs"]})
    for epoch in train["checkpoints"]:
        meta = read_checkpoint(dag_run / f"results/models/cnn/epoch_{epoch}.pt")["meta"]
        assert meta["epoch"] == epoch and 0 <= meta["test_acc"] <= 1 and 0 <= meta["train_acc"] <= 1
    k = _tiny(dag_run)["complexity"]["dictionary"]["k"]
    for epoch in epochs:
        path = dag_run / TX / f"epoch_{epoch}" / "decoding.h5"
        dec, attrs = store.read_h5(path, "temporal-decoding"), store.read_attrs(path, "temporal-decoding")
        assert dec["iv"].shape == (5, k) and dec["factor_iv"].shape == (5, 4) and attrs["epoch"] == epoch
        assert np.nanmin(dec["iv"]) >= 0 and np.nanmax(dec["iv"]) <= 1
    table = pd.read_parquet(dag_run / TX / "emergence.parquet")
    assert len(table) == k and set(table["emergence_epoch"].dropna()) <= set(epochs)
    final = store.read_h5(dag_run / "results/planted/complexity/vinfo.h5", "complexity-vinfo")["complexity"]
    np.testing.assert_allclose(table["complexity"], final)
    np.testing.assert_allclose(table[f"k_epoch_{epochs[-1]}"], final)  # the last epoch is the final dictionary
    factors = pd.read_csv(dag_run / TX / "factors.csv")
    assert list(factors["factor"]) == ["color", "orientation", "parity", "count"]
    for name in ("decoding", "sedimentation"):
        numbers = store.figure_numbers(dag_run / TX / "figures" / f"{name}.png")
        assert numbers and all("paper" in v for k, v in numbers.items() if k.startswith(("rho", "features whose")))


def test_sediment_dictionaries(dag_run: Path) -> None:
    cfg = _tiny(dag_run)
    k = cfg["temporal"]["sediment"]["k"]
    for epoch in cfg["models"]["cnn"]["train"]["checkpoints"]:
        sed = store.read_h5(dag_run / TX / f"epoch_{epoch}" / "sediment.h5", "temporal-sediment")
        assert sed["atoms"].shape == (k, 32) and (sed["atoms"] >= 0).all()
        assert sed["complexity"].shape == (k,)
    matched = store.read_h5(dag_run / TX / "temporal.h5", "temporal")["matched_complexity"]
    assert (np.isfinite(matched[0]).sum()) == k  # each checkpoint atom matched to one final feature


def test_adding_a_checkpoint_plans_only_its_jobs(dag_run: Path) -> None:
    config = _tiny(dag_run)
    config["models"]["cnn"]["train"]["checkpoints"] = [0, *config["models"]["cnn"]["train"]["checkpoints"]]
    (dag_run / "config/config.yaml").write_text(yaml.safe_dump(config))
    try:
        result = snakemake(dag_run, "-n")
    finally:
        (dag_run / "config/config.yaml").write_text((ROOT / "tests/workflow/tiny.yaml").read_text())
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    assert jobs == {
        "train_checkpoint": 1,  # epoch 0 only: the final model and the other checkpoint stay
        "checkpoint_activations": 2,
        "sediment": 1,
        "temporal_decoding": 1,
        "temporal": 1,
        "temporal_figures": 1,
        "claims": 1,  # reads the emergence table (featflow.claims)
        "summary": 1,
        "all": 1,  # its targets gained the new checkpoint file
    }, result.stdout


def test_planted_factors_emerge_in_their_designed_order(tmp_path: Path) -> None:
    """Issue 17, item 6: on planted data, color becomes decodable before parity (color <= orientation <= parity).
    The tiny config's network never learns parity (256 images, 2 epochs: at chance), so this runs the default
    config's planted data and network (the scale at which parity is learned), the temporal targets only, with one
    early checkpoint and small per-checkpoint dictionaries."""
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config = {
        "seed": default["seed"],
        "datasets": {"planted": default["datasets"]["planted"]},
        "models": {"cnn": default["models"]["cnn"]},
        "experiments": {"planted": default["experiments"]["planted"]},
        "complexity": {
            **default["complexity"],
            **{"experiments": ["planted"], "flow": {"experiments": []}},
            "dictionary": {"k": 64, "iterations": 30, "second_seed": False},
        },
        "temporal": {**default["temporal"], "sediment": {"k": 8, "iterations": 10}},
    }
    config["models"]["cnn"]["train"]["checkpoints"] = [1]
    path = tmp_path / "planted.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = copy_workflow(tmp_path / "wf", path)
    result = snakemake(workdir, str(TX / "factors.csv"))
    assert result.returncode == 0, result.stderr[-6000:]
    factors = pd.read_csv(workdir / TX / "factors.csv").set_index("factor")
    at = factors["emergence_epoch"]
    assert at["color"] <= at["orientation"] <= at["parity"] and at["color"] < at["parity"], factors
    assert factors.loc["parity", "iv_epoch_12"] > 0.5  # parity is learned, late
