"""The dictionary contract's registry: every method is one module behind one line, the only place a method is
named; a new method (a module written here, one registry line) runs the complexity branch's dictionary and codes
stages with nothing else changed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import registry as dictionary
from featflow.dictionary.base import Dictionary
from tests.complexity_data import write_complexity_inputs

ROOT = Path(__file__).resolve().parents[2]
# where the stages that use a dictionary live: none may name a method (they know the contract only)
USERS = [ROOT / "src/featflow" / part for part in ("complexity", "temporal", "fv", "claims", "plots", "frequency")]
USERS += [ROOT / "src/featflow" / name for name in ("config.py", "targets.py", "summary.py", "names.py")]


def test_every_registered_method_is_its_module_and_name() -> None:
    for name in dictionary.METHODS:
        method = dictionary.method(name)
        assert method.name == name and callable(method.fit) and callable(method.load)
    with pytest.raises(ValueError, match=r"complexity\.dictionary\.method 'pca'"):
        dictionary.method("pca")


def _named(path: Path) -> list[str]:
    names = set(dictionary.METHODS)
    if path.suffix == ".py":
        tree = ast.parse(path.read_text())
        return [f"{path}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names]
    pattern = re.compile(r"[\"'](" + "|".join(map(re.escape, names)) + r")[\"']")
    return [f"{path}:{i + 1}" for i, line in enumerate(path.read_text().splitlines()) if pattern.search(line)]


def test_the_registry_is_the_only_place_a_method_is_named() -> None:
    files = [p for root in USERS for p in ([root] if root.is_file() else sorted(root.rglob("*.py")))]
    files += sorted((ROOT / "workflow").rglob("*.smk")) + sorted((ROOT / "workflow" / "scripts").glob("*.py"))
    assert len(files) > 30
    assert [hit for path in files for hit in _named(path)] == []


PLANTED_METHOD = '''
"""A test method: the first k training rows, unit norm, as atoms; codes by least squares (signed)."""
import dataclasses
import torch
from featflow.dictionary.base import Method


@dataclasses.dataclass
class Rows:
    atoms: torch.Tensor
    signed_atoms = True
    signed_codes = True

    def encode(self, a):
        return torch.linalg.lstsq(self.atoms.T, a.to(self.atoms).T).solution.T

    def encode_report(self, a):
        return self.encode(a), None

    def decode(self, z):
        return z.to(self.atoms) @ self.atoms

    def state(self):
        return {"atoms": self.atoms.cpu().numpy()}

    def to(self, device):
        return Rows(self.atoms.to(device))


def fit(rows, spec, ctx):
    first = next(rows.batches(ctx.k))
    return Rows(first / first.norm(dim=1, keepdim=True))


METHOD = Method("rows", fit=fit, load=lambda arrays, spec, device: Rows(torch.from_numpy(arrays["atoms"]).to(device)))
'''


def test_a_new_method_is_one_file_and_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from featflow.complexity.codes import encode_split
    from featflow.complexity.dictionary import fit_dictionary

    (tmp_path / "rows_method.py").write_text(PLANTED_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dictionary.METHODS, "rows", "rows_method")
    paths = write_complexity_inputs(tmp_path, n=40, d=8, n_layers=1, k=6)
    spec = ComplexitySpec.from_dict({"dictionary": {"method": "rows", "k": 6, "second_seed": False}})
    out, codes, cpu = tmp_path / "dictionary.h5", tmp_path / "codes.h5", torch.device("cpu")
    files = {"activations": paths["activations"], "checkpoint": paths["checkpoint"]}
    fit_dictionary(spec, layer="act", **files, out=out, device=cpu, seed=0, attrs={})
    encode_split(spec, dictionary=out, **files, out=codes, device=cpu, attrs={})
    atoms = store.read_items(out, "complexity-dictionary", ["atoms"])["atoms"]
    acts = store.read_items(paths["activations"], "activations", ["layers/act"])["layers/act"]
    np.testing.assert_allclose(atoms, acts[:6] / np.linalg.norm(acts[:6], axis=1, keepdims=True), rtol=1e-6)
    z = store.read_h5(codes, "complexity-codes")["codes"]
    expected = np.linalg.lstsq(atoms.T.astype(np.float64), acts.T.astype(np.float64), rcond=None)[0].T
    np.testing.assert_allclose(z, expected, rtol=1e-3, atol=1e-3)
    assert store.read_attrs(out, "complexity-dictionary")["method"] == "rows"
    assert isinstance(dictionary.method("rows").load({"atoms": atoms}, spec.dictionary, cpu), Dictionary)


def test_a_dictionary_file_is_checked_against_its_layer_before_any_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Method file at config time: the file's width against the layer's pooled width (the default cnn's fc1: 64),
    named by experiment and key; the right width passes, a missing file is refused too."""
    import yaml

    from featflow.config import ConfigError
    from featflow.names import checked
    from tools.make_dictionary_file import random_sae, write

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    monkeypatch.chdir(ROOT)  # the shipped data the default reads
    write(tmp_path / "right.safetensors", random_sae(k=32, d=64, seed=0))
    write(tmp_path / "wrong.npz", random_sae(k=32, d=48, seed=0))
    for file, problem in [
        ("right.safetensors", None),
        ("wrong.npz", r"experiment 'planted-sae': .*width d=48, but layer 'fc1' has width 64"),
        ("missing.pt", r"experiment 'planted-sae': .*no such file"),
    ]:
        own = {"method": "file", "file": {"path": str(tmp_path / file)}}
        config["experiments"]["planted-sae"]["dictionary"] = own
        if problem is None:
            checked(config)
        else:
            with pytest.raises(ConfigError, match=problem):
                checked(config)
