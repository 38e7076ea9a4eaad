"""Seeds, provenance attributes and per-rule code hashes.

``script_code(script)`` hashes a rule script and every package file its imports reach (lazy and relative imports
included), so that Snakemake (which sees it in the rule's ``params``) reruns a rule exactly when code it runs
changed, and nothing else; no hand-kept table of which stage uses which file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import random
import sys
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parent


def _featflow_imports(path: Path) -> frozenset[str]:
    """Dotted names of the featflow modules (or module attributes) that a Python file imports, lazily or not."""
    stat = path.stat()
    return _parsed_imports(path, stat.st_mtime_ns, stat.st_size)


@cache  # each file version is parsed once per process, not once per rule whose closure reaches it
def _parsed_imports(path: Path, _mtime_ns: int, _size: int) -> frozenset[str]:
    """:func:`_featflow_imports` of one version of ``path`` (its modification time and size)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "featflow"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "featflow":
                names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # relative import inside the package
            base = ".".join(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts[: -node.level])
            module = f"{base}.{node.module}" if node.module else base
            names |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return frozenset(names)


def _module_file(name: str) -> Path | None:
    """The source file of a dotted featflow name (a package's ``__init__.py``), None for a module attribute."""
    target = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    if target.is_dir() and (target / "__init__.py").is_file():
        return target / "__init__.py"
    if target.with_suffix(".py").is_file():
        return target.with_suffix(".py")
    return None


def import_closure(script: str | Path) -> list[Path]:
    """Every featflow source file that ``script`` reaches through imports (the parents' ``__init__`` included)."""
    seen: set[Path] = set()
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _featflow_imports(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                found = _module_file(".".join(parts[:depth]))
                if found is not None and found not in seen:
                    todo.append(found)
    return sorted(seen)


@cache
def script_code(script: str | Path) -> str:
    """A short SHA-256 of a rule script and every package file its imports reach: the code part of its cache key."""
    digest = hashlib.sha256()
    for path in import_closure(script):
        inside = path.is_relative_to(PACKAGE_ROOT)
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode() if inside else b"<rule script>")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch's global generators (for library code that uses them) and return a
    NumPy Generator for featflow's own draws, which never use global state. torch is seeded when it is imported
    (every package module that uses torch imports it at module level, so a stage's script has it by now); a job
    without torch (figures, tables) does not pay its 2-second import for this."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def provenance(stage: str, spec: Mapping[str, Any], seed: int | None, code: str) -> dict[str, Any]:
    """Attributes every featflow file records: stage, its config subset, seed, code hash and library versions."""
    return {
        "stage": stage,
        "config": json.dumps(spec, sort_keys=True, default=str),
        "seed": -1 if seed is None else int(seed),
        "code_version": code,
        "featflow_version": _version("featflow"),
        "torch_version": _version("torch"),
        "numpy_version": _version("numpy"),
        "python_version": platform.python_version(),
    }
