"""Config validation: defaults, and errors that name the key and what was expected."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from featflow.config import ConfigError, ExperimentSpec, ModelSpec, validate_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_default_config_validates_and_fills_defaults():
    minimal = {
        "datasets": {"p": {"kind": "planted"}},
        "models": {"m": {"arch": "smallcnn", "dataset": "p"}},
        "experiments": {"e": {"model": "m", "dataset": "p", "layers": ["act"]}},
    }
    filled = validate_config(minimal)
    assert filled["seed"] == 0
    assert filled["models"]["m"]["train"]["epochs"] == 10
    activations = filled["experiments"]["e"]["activations"]
    assert activations["pool"] == "gap" and activations["splits"] == ["train", "test"]
    assert activations["max_samples"] is None
    assert "train" not in minimal["models"]["m"]  # the input is not mutated
    validate_config(DEFAULT)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["models"]["cnn"]["train"].update(lrr=0.1),
            "unknown key 'lrr' (did you mean 'lr'?) under models.cnn.train",
        ),
        (lambda c: c.update(sed=1), "unknown key 'sed' (did you mean 'seed'?) under the top level"),
        (
            lambda c: c["models"]["cnn"]["train"].update(epochs="ten"),
            "config key 'models.cnn.train.epochs': 'ten' is not of type 'integer'. Expected: training epochs",
        ),
        (
            lambda c: c["models"]["cnn"]["train"].update(momentum=1.5),
            "config key 'models.cnn.train.momentum': 1.5 is greater than the maximum of 1",
        ),
        (
            lambda c: c["experiments"]["planted"]["activations"].update(pool="max"),
            "config key 'experiments.planted.activations.pool': 'max' is not one of ['gap', 'grid2', 'grid4']",
        ),
        (
            lambda c: c["experiments"]["planted"].update(model="nope"),
            "config key 'experiments.planted.model': 'nope' is not defined",
        ),
        (
            lambda c: c["datasets"].update(c10={"kind": "cifar10", "path": "/no/such/folder"}),
            "config key 'datasets.c10.path': '/no/such/folder' is not a folder",
        ),
        (
            lambda c: c["models"]["cnn"].update(weights="/no/weights.pt"),
            "config key 'models.cnn.weights': '/no/weights.pt' is not a file",
        ),
    ],
)
def test_bad_configs_name_the_key(mutate, message):
    config = copy.deepcopy(DEFAULT)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)


def test_specs_round_trip():
    filled = validate_config(DEFAULT)
    model = ModelSpec.from_dict(filled["models"]["cnn"])
    assert model.train.epochs == DEFAULT["models"]["cnn"]["train"]["epochs"]
    assert ModelSpec.from_dict(model.to_dict()) == model
    exp = ExperimentSpec.from_dict(filled["experiments"]["planted"])
    assert exp.layers == tuple(DEFAULT["experiments"]["planted"]["layers"])
    assert exp.activations.splits == ("train", "test")
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelSpec.from_dict({"arch": "x", "dataset": "y", "colour": 1})


def test_validated_config_is_key_sorted_so_params_ignore_yaml_order():
    reordered = dict(reversed(list(copy.deepcopy(DEFAULT).items())))
    reordered["datasets"]["planted"] = dict(reversed(list(reordered["datasets"]["planted"].items())))
    assert validate_config(reordered) == validate_config(DEFAULT)
    assert repr(validate_config(reordered)) == repr(validate_config(DEFAULT))
