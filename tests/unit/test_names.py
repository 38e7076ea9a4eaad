"""Layer names, FV feature counts and architecture names are refused at validation, before any job runs."""

from __future__ import annotations

import copy

import pytest

from featflow.config import ConfigError
from featflow.names import checked, layer_shapes

BASE = {
    "datasets": {"p": {"kind": "planted", "image_size": 32}},
    "models": {"cnn": {"arch": "smallcnn", "dataset": "p", "width": 8}},
    "experiments": {"e": {"model": "cnn", "dataset": "p", "layers": ["block3", "act"]}},
    "fv": {"v": {"model": "cnn", "layer": "block3.1", "n_f": 6}},
}


def changed(edit) -> dict:
    config = copy.deepcopy(BASE)
    edit(config)
    return config


def test_the_shapes_come_from_a_meta_forward_pass() -> None:
    shapes = layer_shapes(BASE["models"]["cnn"], BASE["datasets"]["p"])
    assert shapes["block3.1"] == (32, 8, 8) and shapes["act"] == (32,) and shapes["fc"] == (8,)
    resnet = layer_shapes({"arch": "resnet18", "dataset": "p", "cifar_stem": False}, {"kind": "cifar10"})
    assert resnet["layer4"] == (512, 1, 1) and resnet["fc"] == (10,)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["experiments"]["e"]["layers"].append("blok3"),
            r"'experiments\.e\.layers': 'blok3' is not a layer of model 'cnn'; closest: block3",
        ),
        (lambda c: c["fv"]["v"].update(layer="block3.9"), r"'fv\.v\.layer': 'block3\.9' is not a layer"),
        (lambda c: c["fv"]["v"].update(n_f=33), r"'fv\.v\.n_f': 33 exceeds the 32 features"),
        (
            lambda c: c["models"]["cnn"].update(arch="resnet1"),
            r"'models\.cnn\.arch'.*'resnet1': not a known architecture.*resnet18",
        ),
        (
            lambda c: c.update(complexity={"experiments": ["e"], "dictionary": {"layer": "pool"}}),
            r"'complexity\.dictionary\.layer': 'pool' is not among experiment 'e''s layers",
        ),
        (
            lambda c: c.update(
                complexity={"experiments": ["e"], "dictionary": {"k": 16}, "pictures": {"ids": [3, 16]}}
            ),
            r"'complexity\.pictures\.ids': \[16\] are not features of a dictionary of complexity\.dictionary\.k = 16",
        ),
    ],
)
def test_a_misspelled_name_is_refused_with_the_key_and_close_names(edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        checked(changed(edit))


def test_the_base_config_passes() -> None:
    assert checked(BASE)["fv"]["v"]["layer"] == "block3.1"


def test_config_files_merge_mapping_by_mapping_as_snakemake_does(tmp_path) -> None:
    import yaml

    from featflow.names import check_files

    base, extra = tmp_path / "base.yaml", tmp_path / "extra.yaml"
    base.write_text(yaml.safe_dump(BASE))
    extra.write_text(yaml.safe_dump({"models": {"cnn": {"width": 4}}}))  # one key of one model
    merged = check_files([base, extra])
    assert merged["models"]["cnn"]["width"] == 4 and merged["models"]["cnn"]["arch"] == "smallcnn"
