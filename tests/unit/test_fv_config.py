"""The fv config section: defaults filled from the schema, typed spec round trip, clear errors."""

import copy
from pathlib import Path

import pytest
import yaml

from featflow.config import ConfigError, validate_config
from featflow.fv.spec import FVSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_defaults_fill_and_spec_round_trip(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["fv"] = {"mini": {"model": "cnn", "layer": "act"}}
    filled = validate_config(cfg, check_paths=False)["fv"]["mini"]
    spec = FVSpec.from_dict(filled)
    assert spec.aggregation == "maxpool_mean" and spec.k == 2 and spec.adam_steps == 800
    assert spec.parametrization == "rgb" and not spec.decorrelate  # the paper's default (Sec. 3, Fig. 2)
    assert spec.critical_space.n_samples == 32 and spec.reoptimize.steps == 500
    assert spec.to_dict() == {**filled, "invert_with": list(filled["invert_with"])}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model", "nope", "fv.bad.model"),
        ("aggregation", "max", "fv.bad.aggregation"),
        ("k", -1, "fv.bad.k"),
        ("invert_with", ["nope"], "fv.bad.invert_with"),
    ],
)
def test_bad_values_name_the_key(default_config, key, value, message):
    cfg = copy.deepcopy(default_config)
    cfg["fv"] = {"bad": {"model": "cnn", "layer": "act", key: value}}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(cfg, check_paths=False)


@pytest.mark.parametrize("preset", ["ifv_googlenet.yaml", "ifv_densenet_cifar.yaml"])
def test_paper_presets_use_the_papers_rgb_parametrization(preset):
    """The paper's experiments 1-3 (Table S1: GoogLeNet inception4c, DenseNet logits) are all RGB."""
    experiments = yaml.safe_load((ROOT / "config/presets" / preset).read_text())["fv"]
    assert {spec["parametrization"] for spec in experiments.values()} == {"rgb"}
