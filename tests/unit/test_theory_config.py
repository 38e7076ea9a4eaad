"""The ``theory`` config section: schema defaults equal the spec's, bad values and names are refused early."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from featflow.config import ConfigError, validate_config
from featflow.theory.spec import check_theory_config
from featflow.theory.two_layer import TheorySpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_schema_defaults_are_the_spec_defaults():
    schema = yaml.safe_load((ROOT / "src/featflow/schemas/theory.schema.yaml").read_text())
    fields = {f.name: f.default for f in dataclasses.fields(TheorySpec)}
    assert set(schema["properties"]) == set(fields)
    for key, sub in schema["properties"].items():
        default = list(fields[key]) if isinstance(fields[key], tuple) else fields[key]
        assert sub["default"] == default, key
        assert sub["description"]


def test_default_and_preset_pass_the_theory_checks(default_config):
    spec = check_theory_config(validate_config(default_config))
    assert spec.feature_lr_scale == 0.0  # W and b frozen after step 2 by default (SPEC 4.2)
    preset = yaml.safe_load((ROOT / "config/presets/theory_paper.yaml").read_text())
    paper = check_theory_config(validate_config(preset))
    assert paper.m == 300 and paper.small_steps() == round(300 ** (4 / 3))
    assert preset["datasets"]["shi"]["shi"] == {"d": 500, "D": 100, "k": 5, "p0": 0.5, "structured": True}


@pytest.mark.parametrize("key, value", [("m", 0), ("lr_scale", 0), ("feature_lr_scale", -1), ("bogus", 1)])
def test_bad_values_are_refused_by_the_schema(default_config, key, value):
    config = copy.deepcopy(default_config)
    config["theory"][key] = value
    with pytest.raises(ConfigError, match=f"theory|{key}"):
        validate_config(config)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("theory", "structured", "planted", "theory.structured': 'planted' is not a data set of kind shi"),
        ("theory", "unstructured", "shi", "must differ"),
        ("shi", "structured", False, "theory.structured': data set 'shi' has shi.structured = False"),
    ],
)
def test_bad_data_set_names_are_refused(default_config, section, key, value, message):
    config = validate_config(default_config)
    (config["theory"] if section == "theory" else config["datasets"]["shi"]["shi"])[key] = value
    with pytest.raises(ValueError, match=message):
        check_theory_config(config)
