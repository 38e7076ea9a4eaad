"""Light jobs pay for their work, not for their imports (issue 28.4): the job of every local rule (figures,
tables, the claims and the summary; the Snakefile's ``localrules``) imports no torch, and the figure jobs that
read only stored numbers import neither scikit-learn nor scipy.

Each rule's modules are those its script reaches (:func:`featflow.repro.import_closure`, lazy imports of the
functions its stage runs included), imported in a fresh process; ``sys.modules`` then lists every third-party
package the job would load before it reads a file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featflow import store
from featflow.complexity.report import split_images
from featflow.frequency.figures import masked_images
from featflow.repro import PACKAGE_ROOT, import_closure

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "workflow" / "scripts"

# Beyond torch: what a rule's job must not import either (scipy.stats alone costs ~1 CPU-s, scikit-learn ~1.3).
ALSO_FORBIDDEN = {
    "theory_figure_accuracy": {"sklearn", "scipy"},
    "theory_figure_alignment": {"sklearn", "scipy"},
    "fv_figure": {"scipy", "pandas"},
    "ifv_figures": {"scipy", "pandas"},
    "reoptimize_figure": {"scipy", "pandas"},
    "cross_ifv_figure": {"scipy", "pandas"},
    "critical_space_figure": {"scipy", "pandas"},
    "idcor_table": {"scipy"},
}

# Compute rules that need no torch either: the theory branch is numpy / scikit-learn, its data set reader
# featflow.data.shi (featflow.data imports torch inside the functions that need it).
TORCH_FREE_COMPUTE = ("theory_train", "theory_baselines", "theory_alignment")


# Reached only for a folder data set, whose images featflow.data decodes with torch (complexity.report.split_images
# reads stored arrays without it; featflow.data reaches featflow.data.sources, the folder Datasets, only from
# their reader): left out of these rules' imports here, and checked at run time below.
FOLDER_DATA_ONLY = {
    "complexity_figures": "featflow.data",
    "meta_features": "featflow.data",
    **dict.fromkeys(TORCH_FREE_COMPUTE, "featflow.data.sources"),
}


def local_rules() -> list[str]:
    """The rules of the Snakefile's ``localrules:`` block."""
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.MULTILINE)
    assert block, "no localrules block in the Snakefile"
    return re.findall(r"(\w+),", block.group(1))


def modules_of(rule: str) -> list[str]:
    """The featflow modules the rule's script reaches, by dotted name."""
    names = []
    for path in import_closure(SCRIPTS / f"{rule}.py"):
        if path.is_relative_to(PACKAGE_ROOT):
            parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# Imported once per checking process before it forks a child per rule (what no rule may import is left out): the
# children then pay only for what is particular to their rule.
PRELOAD = ("numpy", "h5py", "matplotlib.pyplot", "pandas", "scipy.stats", "yaml", "jsonschema")
_CHECKER = """
import importlib, json, os, sys
preload, cases = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in preload:
    importlib.import_module(name)
found = {}
for rule, modules in cases.items():
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        try:
            for name in modules:
                importlib.import_module(name)
            text = " ".join(sys.modules)
        except Exception as err:
            text = f"ERROR {err!r}"
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        found[rule] = stream.read()
    os.wait()
print(json.dumps(found))
"""


def imported_packages(cases: dict[str, list[str]], forbidden: set[str]) -> dict[str, set[str]]:
    """Per case, the top-level packages in ``sys.modules`` after importing its modules into an interpreter that
    had imported only :data:`PRELOAD` (less ``forbidden``): one forked child per case."""
    preload = [name for name in PRELOAD if name.split(".")[0] not in forbidden]
    args = [sys.executable, "-c", _CHECKER, json.dumps(preload), json.dumps(cases)]
    found = json.loads(subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    assert not [text for text in found.values() if text.startswith("ERROR")], found
    return {case: {name.split(".")[0] for name in text.split()} for case, text in found.items()}


def forbidden_in(rule: str) -> set[str]:
    return {"torch", "torchvision"} | ALSO_FORBIDDEN.get(rule, set())


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    """What each local rule's job imports (and a training job's, to check the checker), one process per set of
    forbidden packages."""
    groups: dict[frozenset[str], dict[str, list[str]]] = {}
    for rule in [*local_rules(), *TORCH_FREE_COMPUTE, "train"]:
        skipped = FOLDER_DATA_ONLY.get(rule)
        modules = [m for m in modules_of(rule) if not skipped or not (m == skipped or m.startswith(f"{skipped}."))]
        groups.setdefault(frozenset(forbidden_in(rule)), {})[rule] = modules
    return {
        rule: found
        for forbidden, cases in groups.items()
        for rule, found in imported_packages(cases, forbidden).items()
    }


def test_local_rules_are_the_light_ones():
    """The rules named here are local rules, and every local rule has a script this test can follow."""
    rules = local_rules()
    assert set(ALSO_FORBIDDEN) <= set(rules)
    assert all((SCRIPTS / f"{rule}.py").is_file() for rule in rules)


@pytest.mark.parametrize("rule", [*local_rules(), *TORCH_FREE_COMPUTE])
def test_local_rule_imports_no_torch(rule, loaded):
    bad = loaded[rule] & forbidden_in(rule)
    assert not bad, f"{rule}'s job imports {sorted(bad)}"


def test_the_check_sees_torch(loaded):
    """The checker itself: a training job's modules load torch."""
    assert "torch" in loaded["train"]


def test_split_images_reads_what_load_split_gives(tmp_path):
    """The torch-free image reader of the complexity figures and meta-features: load_split's float32 images
    (uint8 scaled to [0, 1]) at rows in any order, with repeats."""
    from featflow.data import load_split

    rng = np.random.default_rng(0)
    split = {"x": rng.integers(0, 256, (20, 1, 4, 4), dtype=np.uint8), "y": rng.integers(0, 3, 20)}
    path = tmp_path / "data.h5"
    store.write_h5(path, "dataset", {"train": split, "test": split}, {"classes": ["a", "b", "c"], "factor_names": []})
    rows = np.array([7, 2, 7, 19])
    expected = load_split(path, "test", rows=rows).x.numpy()
    got = split_images(path, "test", rows)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    code = f"import sys; from featflow.complexity.report import split_images; split_images({str(path)!r}, 'test', "
    code += "[1, 2]); print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "torch" not in out.split(), "split_images imported torch for a data set of stored arrays"


def test_shi_data_reads_without_torch():
    """The theory jobs' reader of their data set, featflow.data.shi, loads no torch through featflow.data."""
    code = "import sys; import featflow.data.shi, featflow.theory.run; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "torch" not in out.split()


def test_masked_images_is_apply_mask():
    """The mask gallery's numpy filter computes what the masks stage's torch one does (float32 images, a shared
    and a per-image mask)."""
    import torch

    from featflow.frequency.masks import apply_mask

    rng = np.random.default_rng(1)
    images = rng.random((3, 2, 8, 8), dtype=np.float32)
    for masks in (rng.random((1, 8, 8), dtype=np.float32), rng.random((3, 2, 8, 8), dtype=np.float32)):
        expected = apply_mask(torch.from_numpy(images), torch.from_numpy(masks)).numpy()
        got = masked_images(images, masks)
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, atol=1e-6)
