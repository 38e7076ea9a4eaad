"""The knobs left out of every cache key (workflow/rules/common.smk: ACTIVATION_KNOBS, FV_KNOBS, MODEL_KNOBS)
trade memory or speed only: two settings of each give the same outputs, up to float rounding, on the stage
functions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.activations import extract_shard_to_h5, extract_to_h5, merge_shards
from featflow.config import ActivationsSpec, ModelSpec, TrainSpec
from featflow.fv.run import run_optimize, run_targets
from featflow.fv.spec import FVSpec
from featflow.ifv.cross import run_cross
from featflow.ifv.run import run_jacobian
from featflow.keys import keyed
from featflow.models.train import train_model
from tests.folder_data import planted_and_cnn
from tests.workflow.conftest import ROOT

CPU = torch.device("cpu")
LAYERS = ("block1", "block3", "act")
TESTED = {
    *("activations.batch_size", "activations.workers", "activations.shards", "jacobian_chunk", "sample_chunk"),
    "download",
    "shards",  # complexity.shards: tests/unit/test_complexity_shards.py
}


def _declared() -> set[str]:
    text = (ROOT / "workflow/rules/common.smk").read_text()
    found = set()
    for name in ("ACTIVATION_KNOBS", "FV_KNOBS", "MODEL_KNOBS", "COMPLEXITY_KNOBS"):
        found |= set(re.findall(r'"([\w.]+)"', re.search(rf"^{name} = \((.*?)\)$", text, re.M).group(1)))
    return found


def test_every_unkeyed_knob_is_tested_here():
    assert _declared() == TESTED


def test_a_knob_changes_no_key_but_reaches_the_script():
    a = keyed({"layers": ["act"], "activations": {"pool": "gap", "batch_size": 8}}, ("layers", "activations.pool"),
              ("activations.batch_size",))  # fmt: skip
    b = keyed({"layers": ["act"], "activations": {"pool": "gap", "batch_size": 64}}, ("layers", "activations.pool"),
              ("activations.batch_size",))  # fmt: skip
    assert repr(a) == repr(b) == repr({"layers": ["act"], "activations": {"pool": "gap"}})
    assert a["activations"]["batch_size"] == 8 and b["activations"]["batch_size"] == 64


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny planted data set and an untrained (seeded) small CNN checkpoint."""
    return planted_and_cnn(tmp_path_factory.mktemp("knobs"))


def _assert_same_activations(a_path: Path, b_path: Path) -> None:
    a, b = store.read_h5(a_path, "activations"), store.read_h5(b_path, "activations")
    for key in ("labels", "indices", "factors"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-6)
    for name in LAYERS:
        np.testing.assert_allclose(a["layers"][name], b["layers"][name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("knob", "values"), [("batch_size", (5, 64)), ("workers", (0, 2))])
def test_activation_knobs_give_the_same_file(inputs, tmp_path, knob, values):
    data, checkpoint = inputs
    paths = []
    for value in values:
        spec = ActivationsSpec(**{"batch_size": 8, knob: value})
        paths.append(tmp_path / f"{knob}_{value}.h5")
        extract_to_h5(checkpoint, data, "test", LAYERS, spec, paths[-1], device=CPU, attrs={"stage": "activations"})
    _assert_same_activations(*paths)


def test_shards_give_the_same_file(inputs, tmp_path):
    data, checkpoint = inputs
    single, sharded = ActivationsSpec(batch_size=8), ActivationsSpec(batch_size=8, shards=3)
    extract_to_h5(
        checkpoint, data, "test", LAYERS, single, tmp_path / "single.h5", device=CPU, attrs={"stage": "activations"}
    )
    parts = [tmp_path / f"test_{i}.h5" for i in range(3)]
    for i, path in enumerate(parts):
        extract_shard_to_h5(
            checkpoint,
            data,
            "test",
            LAYERS,
            sharded,
            shard=i,
            out_path=path,
            device=CPU,
            attrs={"stage": "activations"},
        )
    merge_shards(parts, tmp_path / "merged.h5", {"stage": "activations"})
    _assert_same_activations(tmp_path / "single.h5", tmp_path / "merged.h5")


@pytest.fixture(scope="module")
def realizations(inputs, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A few FV realizations of 6 block3.1 channels of the untrained CNN (short optimization)."""
    _, checkpoint = inputs
    root = tmp_path_factory.mktemp("fv")
    spec = {"model": "cnn", "layer": "block3.1", "n_f": 6, "adam_steps": 3, "lbfgs_steps": 2, "n_sparse": 3}
    run_targets(FVSpec.from_dict(spec), checkpoint, root / "targets.h5", seed=0, attrs={})
    run_optimize(
        FVSpec.from_dict(spec), checkpoint, root / "targets.h5", root / "real.h5", device=CPU, seed=0, attrs={}
    )
    return spec, root / "real.h5"


CHUNKS = [{"jacobian_chunk": 1, "sample_chunk": 1}, {"jacobian_chunk": 64, "sample_chunk": 16}]


def test_jacobian_chunks_give_the_same_file(inputs, realizations, tmp_path):
    _, checkpoint = inputs
    spec, real = realizations
    outs = []
    for i, chunks in enumerate(CHUNKS):
        outs.append(tmp_path / f"jac_{i}.h5")
        run_jacobian(FVSpec.from_dict({**spec, **chunks}), checkpoint, real, outs[-1], device=CPU, attrs={})
    a, b = (store.read_h5(path, "fv_jacobian") for path in outs)
    assert set(a) == set(b) >= {"gram", "dy", "responses"}
    for key in ("gram", "dy", "responses"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7)


def test_cross_ifv_chunks_give_the_same_file(inputs, realizations, tmp_path):
    _, checkpoint = inputs
    spec, real = realizations
    outs = []
    for i, chunks in enumerate(CHUNKS):
        outs.append(tmp_path / f"cross_{i}.h5")
        run_cross(FVSpec.from_dict({**spec, **chunks}), "other", checkpoint, real, outs[-1], device=CPU, attrs={})
    a, b = (store.read_h5(path, "fv_cross") for path in outs)
    assert set(a) == set(b)
    for key, value in a.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            np.testing.assert_allclose(value, b[key], rtol=1e-4, atol=1e-6)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, b[key])


def test_download_gives_the_same_checkpoint(inputs, tmp_path):
    """``download`` only lets torchvision fetch named weights missing from the hub cache; trained or loaded, the
    network is the same."""
    data, _ = inputs
    states = []
    for download in (False, True):
        spec = ModelSpec(arch="smallcnn", dataset="planted", width=4, download=download, train=TrainSpec(epochs=1))
        train_model(spec, data, tmp_path / f"cnn_{download}.pt", device=CPU, attrs={})
        states.append(torch.load(tmp_path / f"cnn_{download}.pt", weights_only=False)["state_dict"])
    assert states[0].keys() == states[1].keys()
    for key, value in states[0].items():
        torch.testing.assert_close(value, states[1][key])
