"""config/README.md is the rendering of the schemas' descriptions (tools/render_config_docs.py), and it documents
every key: each schema property has a description, and each key of the default config has a row."""

from __future__ import annotations

import re

import yaml

from tools.render_config_docs import OUTPUT, ROOT, SCHEMAS, main, render


def test_committed_config_readme_is_the_rendered_one() -> None:
    assert OUTPUT.read_text() == render(), "config/README.md is out of date: run python tools/render_config_docs.py"
    assert main(["--check"]) == 0


def _properties(node, where):
    if isinstance(node, dict):
        for key, child in node.get("properties", {}).items():
            yield f"{where}.{key}", child
        for key, child in node.items():
            yield from _properties(child, f"{where}.{key}")
    elif isinstance(node, list):
        for child in node:
            yield from _properties(child, where)


def test_every_schema_property_has_a_description() -> None:
    missing = []
    for path in sorted(SCHEMAS.glob("*.schema.yaml")):
        for where, child in _properties(yaml.safe_load(path.read_text()), path.name):
            # a $ref takes the description of what it names, which is checked where it is defined
            if isinstance(child, dict) and not child.get("description") and "$ref" not in child:
                missing.append(where)
    assert not missing, f"add a description to: {missing}"


def _leaves(config, prefix=""):
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, path)
        else:
            yield path


def test_every_key_of_the_default_config_is_documented() -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    documented = set(re.findall(r"^\| `([^`]+)` \|", OUTPUT.read_text(), flags=re.M))
    named = {"datasets": 1, "models": 1, "experiments": 1, "fv": 1}  # maps of names: one level is a <name>
    undocumented = []
    for leaf in _leaves(config):
        parts = leaf.split(".")
        if parts[0] in named and len(parts) > 1:
            parts[1] = "<name>"
        if parts[:3] == ["experiments", "<name>", "dictionary"]:  # an experiment's changes to complexity.dictionary
            parts = ["complexity", *parts[2:]]
        if ".".join(parts) not in documented:
            undocumented.append(leaf)
    assert not undocumented, undocumented
