"""The layer check's on-disk memo (featflow.names): a config seen before is checked without importing torch, and
the memo can never answer for another model, another code version or from a damaged file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import json, sys
from featflow.config import load_yaml, validate_config
from featflow import names
cfg = validate_config(load_yaml("config/config.yaml"))
assert names.check_names(cfg) == [], names.check_names(cfg)
model = cfg["models"]["cnn"]
shapes = names.layer_shapes(model, cfg["datasets"][model["dataset"]])
print(json.dumps({"torch": "torch" in sys.modules, "shapes": shapes}))
"""


def _check(cache: Path) -> dict:
    """The default config checked in a fresh Python with ``cache`` as XDG_CACHE_HOME."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    cache = tmp_path_factory.mktemp("cache")
    return cache, _check(cache)


def test_a_config_seen_before_is_checked_without_torch(first):
    cache, computed = first
    assert computed["torch"] and computed["shapes"]["block3"][0] > 0  # the first check builds the networks
    again = _check(cache)
    assert not again["torch"] and again["shapes"] == computed["shapes"]


def test_damaged_or_foreign_entries_are_recomputed(first, tmp_path):
    cache, computed = first
    copy = tmp_path / "cache"
    entries = sorted((cache / "featflow" / "names").glob("*.json"))
    assert entries
    (copy / "featflow" / "names").mkdir(parents=True)
    for i, entry in enumerate(entries):
        target = copy / "featflow" / "names" / entry.name
        if i % 2:  # truncated mid-write
            target.write_text(entry.read_text()[:20])
        else:  # same file name, another key: the stored key must match, not just the name
            stored = json.loads(entry.read_text())
            stored["key"] += " "
            stored["value"] = {"block3": [1, 1, 1]} if isinstance(stored["value"], dict) else ["bogus"]
            target.write_text(json.dumps(stored))
    redone = _check(copy)
    assert redone["torch"] and redone["shapes"] == computed["shapes"]


def test_an_entry_whose_value_fails_its_hash_is_recomputed(tmp_path, monkeypatch):
    from featflow import names

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert names._memo("shapes", "{}", (3, 8, 8), 2, lambda: {"block3": [16, 2, 2]}) == {"block3": [16, 2, 2]}
    (entry,) = (tmp_path / "featflow" / "names").glob("*.json")
    stored = json.loads(entry.read_text())
    stored["value"]["block3"][0] = 61  # one flipped digit, the key intact
    entry.write_text(json.dumps(stored))
    assert names._memo("shapes", "{}", (3, 8, 8), 2, lambda: {"block3": [16, 2, 2]}) == {"block3": [16, 2, 2]}
    assert json.loads(entry.read_text())["value"]["block3"][0] == 16  # rewritten
