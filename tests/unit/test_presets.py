"""Every paper-scale preset validates against the schema and says what it needs and what it costs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featflow.config import validate_config

PRESETS = sorted((Path(__file__).resolve().parents[2] / "config" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_validates_and_documents_its_needs(preset):
    text = preset.read_text()
    validate_config(yaml.safe_load(text), check_paths=False)  # data and weights live on the user's machine
    header = "\n".join(line for line in text.splitlines() if line.startswith("#")).lower()
    assert "needs" in header, f"{preset.name}: the header must say which data and weights it needs, and where"
    assert "gpu time" in header, f"{preset.name}: the header must estimate its GPU time"


def test_the_issue_presets_exist():
    names = {p.stem for p in PRESETS}
    assert {
        "cifar10_resnet18",
        "imagenet_resnet50",
        "ifv_googlenet",
        "ifv_densenet_cifar",
        "fourier_cifar10",
        "theory_paper",
    } <= names
