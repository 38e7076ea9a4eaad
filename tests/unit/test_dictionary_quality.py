"""The dictionary quality table against numbers computed here from the same files: R^2 as scikit-learn's
variance-weighted r2_score of the reconstruction, mean L0, dead features, accuracy recovered, matched seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score

from featflow import store
from featflow.complexity.codes import encode_split
from featflow.complexity.quality import dictionary_quality
from featflow.complexity.spec import ComplexitySpec
from featflow.temporal.emergence import match
from tests.complexity_data import write_complexity_inputs


def test_quality_row_equals_its_definitions(tmp_path: Path) -> None:
    paths = write_complexity_inputs(tmp_path, n=120, d=8, n_layers=1, k=12)
    spec = ComplexitySpec.from_dict({"dictionary": {"k": 12, "code_iterations": 300}})
    files = {key: paths[key] for key in ("dictionary", "activations", "checkpoint")}
    codes = tmp_path / "codes.h5"
    encode_split(spec, **files, out=codes, device=torch.device("cpu"), attrs={})
    row = dictionary_quality(
        spec,
        experiment="x",
        dictionary=paths["dictionary"],
        codes=codes,
        activations=paths["activations"],
        csv=tmp_path / "quality.csv",
        html=tmp_path / "quality.html",
        attrs={"code_version": "abc", "seed": 0},
    ).iloc[0]
    z = store.read_h5(codes, "complexity-codes")["codes"].astype(np.float64)
    dic = store.read_h5(paths["dictionary"], "complexity-dictionary")
    a = store.read_items(paths["activations"], "activations", ["layers/act"])["layers/act"].astype(np.float64)
    rec = z @ dic["atoms"].astype(np.float64)
    np.testing.assert_allclose(row.r2, r2_score(a, rec, multioutput="variance_weighted"), rtol=1e-5)
    assert row.l0_mean == (z != 0).sum() / len(z) and row.dead == int((~(z != 0).any(0)).sum())
    facts = store.read_attrs(codes, "complexity-codes")
    assert row.accuracy_recovered == facts["accuracy_reconstructed"] / facts["accuracy"]
    np.testing.assert_allclose(row.seed_cosine_median, np.median(match(dic["atoms"], dic["atoms_seed2"])[2]))
    assert row.method == "nmf" and row.layer == "act" and (row.k, row.d) == (12, 8) and row.code_version == "abc"
    assert pd.read_csv(tmp_path / "quality.csv").shape == (1, len(row))
    assert "R<sup>2</sup>" in (tmp_path / "quality.html").read_text()


def test_seeds_are_matched_atom_to_atom_by_cosine() -> None:
    atoms = np.eye(4)[:3] + 0.1
    shuffled = -atoms[[2, 0, 1]] * -2.0  # the same directions, reordered and rescaled
    np.testing.assert_allclose(match(atoms, shuffled)[2], 1.0)
