"""The complexity config section: defaults fill the typed spec; bad values fail early, naming the key."""

import numpy as np
import pytest

from featflow.complexity.dictionary import dictionary_layer
from featflow.complexity.report import hoyer
from featflow.complexity.spec import ComplexitySpec
from featflow.config import validate_config
from featflow.fv.atoms import PicturesSpec
from featflow.keys import drop

BASE = {"datasets": {"p": {"kind": "planted"}}, "models": {}, "experiments": {}}


def test_defaults_fill_the_spec() -> None:
    """The section's ``pictures`` is the FV branch's spec (featflow.fv.atoms runs it); the rest is the branch's."""
    cfg = validate_config({**BASE, "complexity": {}})
    assert ComplexitySpec.from_dict(drop(cfg["complexity"], ["pictures"])) == ComplexitySpec()
    assert PicturesSpec.from_dict(cfg["complexity"]["pictures"]) == PicturesSpec()


@pytest.mark.parametrize(
    "section, key",
    [
        ({"dictionary": {"solver": "als"}}, "complexity.dictionary.solver"),
        ({"vinfo": {"test_fraction": 1.0}}, "complexity.vinfo.test_fraction"),
        ({"robustness": {"draws": 1}}, "complexity.robustness.draws"),
    ],
)
def test_bad_values_name_the_key(section: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        validate_config({**BASE, "complexity": section})


def test_dictionary_layer() -> None:
    assert dictionary_layer(ComplexitySpec().dictionary, ["block1", "act"]) == "act"
    with pytest.raises(ValueError, match="complexity.dictionary.layer"):
        dictionary_layer(ComplexitySpec.from_dict({"dictionary": {"layer": "fc9"}}).dictionary, ["block1", "act"])


def test_hoyer_extremes() -> None:
    np.testing.assert_allclose(hoyer(np.array([[2.0, 0, 0, 0], [1.0, 1, 1, 1]])), [1.0, 0.0])
