"""Every paper-scale preset validates (schema and layer names) and says what it needs and what it costs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featflow.names import checked

PRESETS = sorted((Path(__file__).resolve().parents[2] / "config" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_validates_and_documents_its_needs(preset):
    text = preset.read_text()
    checked(yaml.safe_load(text), check_paths=False)  # layer names too; data and weights live elsewhere
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
