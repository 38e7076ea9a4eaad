"""Training seeds as replicates (featflow.seeds): what one more seed adds to a config, and what it leaves alone."""

import copy
from pathlib import Path

import pytest
import yaml

from featflow import seeds
from featflow.config import ConfigError, ModelSpec, validate_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def single() -> dict:
    """The default config with one training seed per model."""
    config = copy.deepcopy(DEFAULT)
    for model in config["models"].values():
        model["train"].pop("seeds", None)
    return config


def with_seeds(**per_model: list[int]) -> dict:
    config = single()
    for model, listed in per_model.items():
        config["models"][model]["train"].pop("seed", None)
        config["models"][model]["train"]["seeds"] = listed
    return validate_config(config, check_paths=False)


def test_one_seed_changes_nothing():
    plain = validate_config(single(), check_paths=False)
    assert with_seeds(cnn=[0]) == plain
    assert all("@" not in name for section in ("models", "experiments", "fv") for name in plain[section])


def test_a_second_seed_replicates_everything_downstream_of_its_model():
    config = with_seeds(**{"cnn": [0, 5], "cnn-pgd": [0, 5]})
    assert config["models"]["cnn@s5"]["train"]["seed"] == 5 and config["models"]["cnn"]["train"]["seed"] == 0
    ModelSpec.from_dict(config["models"]["cnn@s5"])  # a valid spec: `seeds` consumed
    assert config["experiments"]["planted@s5"]["model"] == "cnn@s5"
    assert "planted-res@s5" not in config["experiments"]  # resnet has one seed
    assert config["fv"]["cnn_block3@s5"]["model"] == "cnn@s5"
    assert config["fv"]["cnn_block3@s5"]["invert_with"] == ["cnn-pgd@s5"]  # the same seed's other model
    assert {"planted@s5", "planted-seminmf@s5", "planted-sae@s5"} <= set(config["complexity"]["experiments"])
    assert config["temporal"]["experiments"] == ["planted", "planted@s5"]
    assert "planted@s5" in config["frequency"]["idcor"]["experiments"]
    # the seed-0 entries are what they were: adding a seed re-plans only the replicate's jobs
    plain = validate_config(single(), check_paths=False)
    for section in ("models", "experiments", "fv"):
        assert {k: v for k, v in config[section].items() if "@" not in k} == plain[section]


def test_model_lists_take_replicates_seed_by_seed():
    config = with_seeds(**{"cnn-fashion": [1, 2, 3], "cnn-fashion-pgd": [1, 2, 3]})
    assert config["frequency"]["masks"]["models"] == [
        "cnn-fashion",
        "cnn-fashion-pgd",
        "cnn-fashion@s2",
        "cnn-fashion-pgd@s2",
        "cnn-fashion@s3",
        "cnn-fashion-pgd@s3",
    ]
    assert config["models"]["cnn-fashion"]["train"]["seed"] == 1  # the first listed seed keeps the name
    assert seeds.replicates(config, "experiments", "fashion") == [(1, "fashion"), (2, "fashion@s2"), (3, "fashion@s3")]
    assert seeds.replicates(config, "models", "cnn-fashion-pgd")[2] == (3, "cnn-fashion-pgd@s3")
    assert seeds.base("fashion@s3") == "fashion"


def test_the_replication_overlay_trains_every_default_model_at_three_seeds():
    from featflow.config import merged

    overlay = yaml.safe_load((ROOT / "config" / "presets" / "overlays" / "replication.yaml").read_text())
    config = validate_config(merged(copy.deepcopy(DEFAULT), overlay), check_paths=False)
    for model in DEFAULT["models"]:
        assert [seed for seed, _ in seeds.replicates(config, "models", model)] == [0, 1, 2], model
    for section in ("experiments", "fv"):
        for name in DEFAULT[section]:
            assert len(seeds.replicates(config, section, name)) == 3, name
    assert {"fashion@s2", "planted-sae@s2"} <= set(config["complexity"]["experiments"])


def test_a_seed_other_than_the_first_of_seeds_is_refused():
    config = single()
    config["models"]["cnn"]["train"]["seeds"] = [1, 2]  # cnn's train also says seed: 0
    with pytest.raises(ConfigError, match="models.cnn.train.seed"):
        validate_config(config, check_paths=False)
