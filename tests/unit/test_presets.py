"""Every paper-scale preset validates (schema and layer names), says what it needs and what it costs, and the
layout its header describes is the one the checks accept."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from featflow.config import validate_config
from featflow.names import checked
from tests.folder_data import write_cifar10

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


LAYOUT = re.compile(r"^#\s+(/\S+)")  # a header line naming a needed path: "#   /data/imagenet/train/<class>/<image>"


def _build(described: str, root: Path) -> None:
    """Write, under ``root``, tiny files in the layout one header line describes."""
    local = root / described.lstrip("/")
    if local.name == "cifar-10-batches-py":
        write_cifar10(local.parent, per_batch=2)
    elif "<class>" in described:
        for name in ("n01440764", "n01443537"):  # two class folders, one small image each
            image = Path(str(local).replace("<class>", name).replace("<image>", "0.png"))
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    else:  # a weights file: any torch.save file passes the check; its keys are matched when the model loads
        local.parent.mkdir(parents=True, exist_ok=True)
        torch.save({}, local)


def _paths(config: dict) -> list[tuple[dict, str]]:
    """(entry, key) of every local path the config names: data folders and weights files."""
    found = [(ds, "path") for ds in config["datasets"].values() if ds.get("path")]
    weights = [(m, "weights") for m in config["models"].values() if m.get("weights")]
    return found + [(m, key) for m, key in weights if "/" in m[key]]  # not a torchvision weights name


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_the_layout_a_header_describes_passes_the_checks(preset, tmp_path):
    """The header's "Needs" lines, built as tiny files under a stand-in for /, pass the path checks of
    `python -m featflow.names` (the ones `make run CONFIG=...` runs first); every path is absolute (as the
    header says where) and described by the header; the header shows the `make run` line."""
    text = preset.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert f"make run CONFIG=config/presets/{preset.name}" in "\n".join(header), f"{preset.name}: no make run line"
    described = [match.group(1) for line in header if (match := LAYOUT.match(line))]
    config = yaml.safe_load(text)
    for entry, key in _paths(config):
        path = entry[key]
        assert path.startswith("/"), f"{preset.name}: {key} '{path}' is relative; the header says where, absolutely"
        assert any(d.startswith(path.rstrip("/") + "/") or d == path for d in described), (
            f"{preset.name}: {key} '{path}' is not among the header's needs {described}"
        )
        entry[key] = str(tmp_path / path.lstrip("/"))
    for path in described:
        _build(path, tmp_path)
    validate_config(config)  # schema, references and every data folder and weights file (layer names: above)
