"""Write config/README.md from the config schemas' descriptions (src/featflow/schemas/*.schema.yaml).

    python tools/render_config_docs.py            # rewrites config/README.md
    python tools/render_config_docs.py --check    # exit 1 when config/README.md is not the rendered text

tests/unit/test_config_docs.py keeps the committed file equal to the rendering, so a schema edit that is not
re-rendered fails the suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "src" / "featflow" / "schemas"
OUTPUT = ROOT / "config" / "README.md"
ROOT_SCHEMA = "config.schema.yaml"

INTRO = """\
# Configuration

<!-- Generated from src/featflow/schemas/*.schema.yaml by `python tools/render_config_docs.py`; do not edit by
hand (tests/unit/test_config_docs.py checks that this file is current). -->

featflow runs one config: `config/config.yaml`, the embedded default (every stage of every branch on 2 CPU cores
in minutes), or the files given with `--configfile` (e.g. a preset of `config/presets/`), which replace it rather
than being merged into it. `make run CONFIG=config/presets/<preset>.yaml` checks the files first.

- **Validation.** Before any job runs, the config is checked against `src/featflow/schemas/config.schema.yaml`
  (which includes one schema per branch): an unknown key, a wrong type, an out-of-range value, a missing data
  folder or weights file, or a layer name the model lacks stops the run with a message naming the key and what
  was expected, and nothing is written. `.venv/bin/python -m featflow.names FILE...` runs the same checks alone.
- **Defaults.** A key left out takes the default below; a branch section (`fv`, `frequency`, `theory`,
  `complexity`, `temporal`) that is present gets every default it leaves out (`theory: {}` is the default
  theory run), and a branch whose section is absent or `null` plans no job.
- **Names.** `datasets`, `models`, `experiments` and `fv` map names of your choice (`<name>` below) to entries;
  the other sections refer to them by name. An experiment is a model x a data set x layers.
- **Reruns.** Each stage's cache key holds exactly the keys it reads, so changing a key reruns only the stages
  that read it and their dependents; the memory or speed knobs (batch sizes, chunk sizes, shards, workers) rerun
  nothing (README, "Targeted reruns").

Keys are dotted paths; `<name>` stands for a name of your choice. Default "required" marks a key that must be
given, "-" one without a default.
"""


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SCHEMAS / name).read_text())


def resolve(node: dict[str, Any], document: str) -> tuple[dict[str, Any], str]:
    """``node`` with its ``$ref`` followed (within a schema file, ``#/$defs/x``, or to another file), merged with
    the node's own keys (a ``default`` beside a ``$ref``); the document the result lives in."""
    while "$ref" in node:
        ref = node["$ref"]
        file, _, fragment = ref.partition("#")
        document = file or document
        target: Any = load(document)
        for part in filter(None, fragment.split("/")):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node, document


def text(description: str | None) -> str:
    """One table cell: whitespace collapsed, pipes escaped."""
    return re.sub(r"\s+", " ", description or "").strip().replace("|", "\\|")


def inline(value: Any) -> str:
    """A default as YAML, on one line."""
    if value is None:
        return "`null`"
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return f"`{dumped.removesuffix('...').strip()}`"


def type_of(node: dict[str, Any], document: str) -> str:
    if "enum" in node:
        return " / ".join(f"`{v}`" if v is not None else "`null`" for v in node["enum"])
    kind = node.get("type", "object" if "properties" in node else "")
    kinds = kind if isinstance(kind, list) else [kind]
    parts = []
    for k in kinds:
        if k == "array":
            items, _ = resolve(node.get("items", {}), document)
            parts.append(f"list of {type_of(items, document) or 'values'}")
        elif k == "object" and isinstance(node.get("additionalProperties"), dict):
            parts.append("mapping of names")
        else:
            parts.append(k)
    return " or ".join(p for p in parts if p)


def rows(node: dict[str, Any], document: str, path: str, required: bool) -> list[str]:
    """Table rows of ``node`` at ``path`` and of everything below it."""
    node, document = resolve(node, document)
    default = inline(node["default"]) if "default" in node else ("required" if required else "-")
    out = [f"| `{path}` | {type_of(node, document)} | {default} | {text(node.get('description'))} |"]
    out += children(node, document, path)
    return out


def children(node: dict[str, Any], document: str, path: str) -> list[str]:
    out = []
    needed = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        out += rows(child, document, f"{path}.{key}" if path else key, key in needed)
    entry = node.get("additionalProperties")
    if isinstance(entry, dict):
        out += rows(entry, document, f"{path}.<name>", False)
    return out


HEADER = "| key | type | default | description |\n|---|---|---|---|\n"


def render() -> str:
    """The whole of config/README.md."""
    root, document = resolve(load(ROOT_SCHEMA), ROOT_SCHEMA)
    needed = set(root.get("required", []))
    scalars = []
    sections = []
    for key, child in root["properties"].items():
        node, doc = resolve(child, document)
        if "properties" in node or isinstance(node.get("additionalProperties"), dict):
            body = HEADER + "\n".join(rows(child, document, key, key in needed)) + "\n"
            sections.append(f"## `{key}`\n\n{body}")
        else:
            scalars += rows(child, document, key, key in needed)
    top = f"## Top level\n\n{text(root.get('description'))}.\n\n{HEADER}" + "\n".join(scalars) + "\n"
    return "\n".join([INTRO, top, *sections])


def main(argv: list[str]) -> int:
    rendered = render()
    if argv == ["--check"]:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != rendered:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python tools/render_config_docs.py")
            return 1
        return 0
    OUTPUT.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
