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
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parent


Imported = tuple[str, str | None]
"""A featflow module and the name imported from it (None: the module itself)."""


def _imports_of(nodes: list[ast.AST], path: Path) -> frozenset[Imported]:
    """The featflow imports among ``nodes`` (walked recursively), as :data:`Imported` pairs."""
    found: set[Imported] = set()
    for node in (inner for outer in nodes for inner in ast.walk(outer)):
        if isinstance(node, ast.Import):
            found |= {(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "featflow"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "featflow":
                found |= {(node.module, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # relative import inside the package
            base = ".".join(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts[: -node.level])
            module = f"{base}.{node.module}" if node.module else base
            found |= {(module, alias.name) for alias in node.names}
    return frozenset(found)


@dataclass(frozen=True)
class _Parsed:
    """The featflow imports of one source file: at module level (outside its functions), in each top-level
    function's body, and the names each function mentions (to follow the module's functions it calls)."""

    module: frozenset[Imported]
    functions: dict[str, frozenset[Imported]]
    mentions: dict[str, frozenset[str]]

    def of(self, function: str | None) -> frozenset[Imported]:
        """The imports that running ``function`` (None: anything in the module) may execute."""
        if function is None:
            return self.module.union(*self.functions.values())
        names, todo, seen = set(self.module), [function], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            names |= self.functions[name]
            todo += [other for other in self.mentions[name] if other in self.functions]
        return frozenset(names)


def _parsed(path: Path) -> _Parsed:
    """:class:`_Parsed` of the current version of ``path``."""
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@cache  # each file version is parsed once per process, not once per rule whose closure reaches it
def _parse(path: Path, _mtime_ns: int, _size: int) -> _Parsed:
    tree = ast.parse(path.read_text(), filename=str(path))
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    rest = [node for node in tree.body if node not in defs]
    # decorators, defaults and annotations run at import time: they belong to the module level
    outer = [part for node in defs for part in (*node.decorator_list, node.args, *filter(None, [node.returns]))]
    return _Parsed(
        _imports_of([*rest, *outer], path),
        {node.name: _imports_of(node.body, path) for node in defs},
        {
            node.name: frozenset(n.id for part in node.body for n in ast.walk(part) if isinstance(n, ast.Name))
            for node in defs
        },
    )


@cache  # a parse resolves ~15,000 names; the files of a checkout do not come and go within one process
def _module_file(name: str) -> Path | None:
    """The source file of a dotted featflow name (a package's ``__init__.py``), None for a module attribute."""
    target = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    if target.is_dir() and (target / "__init__.py").is_file():
        return target / "__init__.py"
    if target.with_suffix(".py").is_file():
        return target.with_suffix(".py")
    return None


def _targets(imported: Imported) -> list[tuple[Path, str | None]]:
    """The files an import runs, each with the one function it reaches there (None: the whole file): the parent
    packages' ``__init__``, the module, and for ``from m import f`` of a top-level function f only f's part of m."""
    module, name = imported
    parts = module.split(".")
    out = [(found, None) for depth in range(1, len(parts) + 1) if (found := _module_file(".".join(parts[:depth])))]
    if name is None or not out or out[-1][0] != _module_file(module):
        return out
    submodule = _module_file(f"{module}.{name}")
    if submodule is not None:
        return [*out, (submodule, None)]
    if name in _parsed(out[-1][0]).functions:
        out[-1] = (out[-1][0], name)
    return out


def import_closure(script: str | Path) -> list[Path]:
    """Every featflow source file that ``script`` reaches through imports (the parents' ``__init__`` included).

    Function-level where a file imports a function: ``from featflow.x.stage import fit`` follows the module-level
    imports of ``stage.py`` and the (lazy) imports of ``fit`` and of the module's functions it calls, not the
    lazy imports of the module's other functions, so a rule's code key covers what its stage runs. Every file
    reached is hashed whole."""
    visited: dict[Path, set[str | None]] = {}
    todo: list[tuple[Path, str | None]] = [(Path(script).resolve(), None)]
    while todo:
        path, function = todo.pop()
        done = visited.setdefault(path, set())
        if None in done or function in done:
            continue
        done.add(function)
        for imported in _parsed(path).of(function):
            todo += _targets(imported)
    return sorted(visited)


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


def package_version(package: str) -> str:
    """The installed version of ``package`` ("absent" when it is not installed), without importing it."""
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
        "featflow_version": package_version("featflow"),
        "torch_version": package_version("torch"),
        "numpy_version": package_version("numpy"),
        "python_version": platform.python_version(),
    }
