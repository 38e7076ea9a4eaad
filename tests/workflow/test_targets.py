"""`rule all`'s targets come from featflow.targets.targets: each branch's section adds its outputs, an absent or
null section adds none, and the summary table (headed by the claims table) is asked for exactly when some figure
is."""

from __future__ import annotations

import copy

import pytest
import yaml

from featflow.config import BRANCHES, ConfigError, validate_config
from featflow.targets import branch_targets, figures, targets
from tests.workflow.conftest import ROOT

DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())
DEPENDENT = {"complexity": ("temporal",)}  # branches that read another's outputs go off with it
MINIMAL = {
    "datasets": {"planted": {"kind": "planted", "n_train": 64, "n_test": 32}},
    "models": {"cnn": {"arch": "smallcnn", "dataset": "planted", "width": 4}},
    "experiments": {"planted": {"model": "cnn", "dataset": "planted", "layers": ["block1", "act"]}},
}


def test_default_config_targets_every_branch():
    cfg = validate_config(DEFAULT)
    by_branch = branch_targets(cfg)
    assert all(by_branch[b] for b in ("models", "activations", *BRANCHES)), by_branch
    paths = targets(cfg)
    assert len(paths) == len(set(paths))
    assert "results/fv/cnn_block3/figures/cross_cnn-pgd.png" in paths
    assert "results/planted/complexity/figures/top_images.png" in paths
    assert "results/frequency/compare/masks.png" in paths and "results/theory/accuracy.csv" in paths
    assert "results/planted/temporal/figures/sedimentation.png" in paths and "results/models/cnn/epoch_3.pt" in paths
    assert paths[-3:] == ["results/claims.csv", "results/summary.rst", "results/summary.csv"]
    assert figures(cfg) == sorted(p for p in paths if p.endswith(".png"))


def test_minimal_config_targets_models_and_activations_only():
    assert targets(validate_config(MINIMAL)) == [
        "results/models/cnn.pt",
        "results/planted/activations/train.h5",
        "results/planted/activations/test.h5",
    ]


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("off", ["absent", "null"])
def test_a_branch_off_drops_exactly_its_targets(branch, off):
    config = copy.deepcopy(DEFAULT)
    off_too = [branch, *DEPENDENT.get(branch, ())]  # temporal follows the complexity branch's dictionary
    for name in off_too:
        if off == "absent":
            del config[name]
        else:
            config[name] = None
    full, without = branch_targets(validate_config(DEFAULT)), branch_targets(validate_config(config))
    assert all(without[name] == [] for name in off_too)
    assert {b: p for b, p in without.items() if b not in off_too} == {b: p for b, p in full.items() if b not in off_too}


def test_temporal_section_is_checked():
    config = copy.deepcopy(DEFAULT)
    del config["complexity"]
    with pytest.raises(ConfigError, match="temporal.experiments': 'planted' is not in complexity.experiments"):
        validate_config(config)
    config = copy.deepcopy(DEFAULT)
    config["temporal"]["layer"] = "block9"
    with pytest.raises(ConfigError, match="temporal.layer': 'block9' is not a layer of experiment 'planted'"):
        validate_config(config)


def test_a_present_section_gets_its_defaults():
    config = copy.deepcopy(MINIMAL)
    config["datasets"] |= {
        "shi": {"kind": "shi", "shi": {"structured": True}},
        "shi-flat": {"kind": "shi", "shi": {"structured": False}},
    }
    config |= {"theory": {}, "complexity": {"experiments": ["planted"]}, "fv": {}, "frequency": {}}
    cfg = validate_config(config)
    assert cfg["theory"]["structured"] == "shi" and cfg["theory"]["m"] == 100
    assert cfg["complexity"]["dictionary"]["k"] == 128 and cfg["complexity"]["figures"]["top_images"] == 8
    assert cfg["frequency"]["masks"]["models"] == [] and cfg["frequency"]["idcor"]["experiments"] == []
    by_branch = branch_targets(cfg)
    assert by_branch["theory"] and by_branch["complexity"]
    assert by_branch["fv"] == [] and by_branch["frequency"] == []
