"""A dictionary loaded from a file runs the whole complexity branch (issue 29): a random SAE written by
tools/make_dictionary_file.py, as a researcher brings one, through the dictionary, codes, V-information,
redundancy, robustness, importance, quality and feature-table stages, in process (the tiny DAG keeps its jobs for
the fitted methods)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from featflow import store
from featflow.complexity.codes import encode_split
from featflow.complexity.dictionary import fit_dictionary
from featflow.complexity.importance import compute_importance
from featflow.complexity.quality import dictionary_quality
from featflow.complexity.redundancy import compute_redundancy
from featflow.complexity.report import feature_table
from featflow.complexity.robustness import compute_robustness
from featflow.complexity.spec import ComplexitySpec
from featflow.complexity.vinfo import compute_vinfo
from tests.complexity_data import write_complexity_inputs
from tools.make_dictionary_file import random_sae, write


def test_a_file_sae_runs_the_complexity_branch(tmp_path: Path) -> None:
    paths = write_complexity_inputs(tmp_path, n=96, d=16, n_layers=2, k=24)
    sae = tmp_path / "sae.safetensors"
    write(sae, random_sae(k=24, d=16, seed=0))
    spec = ComplexitySpec.from_dict(
        {
            "dictionary": {"method": "file", "file": {"path": str(sae)}},
            "redundancy": {"masks": 60, "mask_seeds": 2},
            "robustness": {"draws": 2, "images": 24},
        }
    )
    cpu, out = torch.device("cpu"), {name: tmp_path / f"{name}.h5" for name in ("dic", "codes", "vinfo", "red")}
    out |= {name: tmp_path / f"{name}.h5" for name in ("rob", "imp")}
    common = {"activations": paths["activations"], "checkpoint": paths["checkpoint"]}
    fit_dictionary(spec, layer="act", **common, out=out["dic"], device=cpu, seed=0, attrs={})
    encode_split(spec, dictionary=out["dic"], **common, out=out["codes"], device=cpu, attrs={})
    files = {"codes": out["codes"], "activations": paths["activations"]}
    compute_vinfo(
        spec, **files, data=paths["data"], dictionary=out["dic"], out=out["vinfo"], factors_csv=tmp_path / "f.csv",
        seed=0, attrs={},
    )  # fmt: skip
    compute_redundancy(spec, **files, layer="act", out=out["red"], seed=0, attrs={})
    compute_robustness(
        spec, checkpoint=paths["checkpoint"], data=paths["data"], dictionary=out["dic"], pool_mode="gap",
        out=out["rob"], device=cpu, seed=0, attrs={},
    )  # fmt: skip
    compute_importance(spec, checkpoint=paths["checkpoint"], **files, dictionary=out["dic"], out=out["imp"], attrs={})
    quality = dictionary_quality(
        spec, experiment="file", dictionary=out["dic"], **files, csv=tmp_path / "q.csv", html=tmp_path / "q.html",
        attrs={},
    ).iloc[0]  # fmt: skip
    table = feature_table(
        dict_path=out["dic"], codes_path=out["codes"], vinfo_path=out["vinfo"], redundancy_path=out["red"],
        robustness_path=out["rob"], importance_path=out["imp"], csv=tmp_path / "t.csv", parquet=tmp_path / "t.pq",
        html=tmp_path / "t.html",
    )  # fmt: skip
    atoms = store.read_items(out["dic"], "complexity-dictionary", ["atoms"])["atoms"]
    np.testing.assert_allclose(atoms, random_sae(k=24, d=16, seed=0)["W_dec"])  # the file's atoms, not a fit
    assert "atoms_seed2" not in store.shapes(out["dic"])  # one file: no second seed
    assert quality.method == "file" and quality.signed_atoms and np.isnan(quality.seed_cosine_median)
    assert len(table) == 24 and table.attrs["method"] == "file" and not table.attrs["nnls_codes"]
    assert np.isfinite(table["complexity"]).any() and store.read_h5(out["imp"])["signed"].shape == (24,)
