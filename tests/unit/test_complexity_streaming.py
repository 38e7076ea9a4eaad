"""The complexity stages stream over row chunks: results equal across chunk sizes (one that does not divide N,
one of a single sample) and equal to the in-memory computation; V-information from chunked moments matches
scikit-learn's Ridge."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featflow import store
from featflow.complexity import report
from featflow.complexity.codes import encode_split
from featflow.complexity.importance import compute_importance
from featflow.complexity.redundancy import compute_redundancy
from featflow.complexity.spec import ComplexitySpec
from featflow.complexity.vinfo import compute_vinfo
from featflow.dictionary.nmf import coder
from featflow.metrics import cka, vinfo
from tests.complexity_data import write_complexity_inputs

N = 300


@pytest.mark.parametrize("rows", [1, 7, 64, 1000])
def test_chunked_ridge_r2_matches_sklearn(rows: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 6)) + 3.0  # off-centre: the moments' pairwise update must not cancel
    z = np.abs(x[:, :2] @ rng.normal(size=(2, 5)) + rng.normal(size=(N, 5)))
    z[:, 4] = 2.0  # constant target: NaN
    train, test = vinfo.split_indices(N, 0.2, seed=3)
    masks = [np.isin(np.arange(N), part) for part in (train, test)]
    ours = vinfo.ridge_r2_chunks(vinfo.array_chunks([x, x[:, :3]], z, rows), *masks)
    xc = x[train] - x[train].mean(0)
    lam = 1e-3 * np.trace(xc.T @ xc) / x.shape[1]
    for i in range(4):
        ref = Ridge(alpha=lam).fit(x[train], z[train, i])
        assert ours[0, i] == pytest.approx(r2_score(z[test, i], ref.predict(x[test])), abs=1e-10)
    np.testing.assert_allclose(ours[1], vinfo.ridge_r2(x[:, :3], z, train, test), atol=1e-10)
    assert np.isnan(ours[:, 4]).all()


def test_chunked_identical_layers_and_redundancy() -> None:
    rng = np.random.default_rng(0)
    block, act, z = rng.random((50, 4)), rng.random((50, 3)), rng.random((50, 6))
    layers = [rng.random((50, 4)), block, block.copy(), act]
    chunks = ([x[s : s + 7] for x in layers] for s in range(0, 50, 7))
    assert vinfo.identical_layers(["input", "block3", "pool", "act"], chunks) == {"pool": "block3"}
    moments = cka.CoMoments(4, 6)
    for s in range(0, 50, 7):
        moments.update(block[s : s + 7], z[s : s + 7])
    np.testing.assert_allclose(
        cka.masked_redundancy(moments, 0.5, 10, np.random.default_rng(2)),
        cka.redundancy(block, z, 0.5, 10, np.random.default_rng(2)),
        rtol=1e-10,
    )


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_float32_chunks_match_sklearn_on_their_float64_values(rows: int) -> None:
    rng = np.random.default_rng(2)
    x = (np.maximum(rng.normal(size=(N, 8)), 0) + 5.0).astype(np.float32)  # stored activations are float32
    z = (np.abs(x[:, :3] @ rng.normal(size=(3, 4))) + rng.random((N, 4))).astype(np.float32)
    train, test = vinfo.split_indices(N, 0.2, seed=1)
    masks = [np.isin(np.arange(N), part) for part in (train, test)]
    ours = vinfo.ridge_r2_chunks(vinfo.array_chunks([x], z, rows), *masks)[0]
    x64, z64 = x.astype(np.float64), z.astype(np.float64)
    xc = x64[train] - x64[train].mean(0)
    ref = Ridge(alpha=1e-3 * np.trace(xc.T @ xc) / x.shape[1], solver="cholesky").fit(x64[train], z64[train])
    np.testing.assert_allclose(ours, r2_score(z64[test], ref.predict(x64[test]), multioutput="raw_values"), atol=1e-10)


def test_vinfo_stage_reads_its_inputs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical layers, training and held-out moments from one pass over the files (before: three); a copy of
    a layer is found in that pass and its row dropped, leaving I_V as without it."""
    paths = write_complexity_inputs(tmp_path, N, d=16, n_layers=3, k=12, rows=128)
    spec = ComplexitySpec.from_dict({"dictionary": {"k": 12, "code_iterations": 200}})
    codes, cpu = tmp_path / "codes.h5", torch.device("cpu")
    encode_split(
        spec,
        dictionary=paths["dictionary"],
        activations=paths["activations"],
        checkpoint=paths["checkpoint"],
        out=codes,
        device=cpu,
        attrs={},
    )
    acts, attrs = store.read_h5(paths["activations"]), store.read_attrs(paths["activations"])
    acts["layers"]["copy"] = acts["layers"]["layer2"]
    copied = tmp_path / "copied.h5"
    store.write_h5(copied, "activations", acts, {**attrs, "layers": ["layer1", "layer2", "copy", "act"]})
    reads: list[object] = []
    iter_rows = store.iter_rows
    monkeypatch.setattr(
        store, "iter_rows", lambda sources, *a, **kw: reads.append(sources) or iter_rows(sources, *a, **kw)
    )
    results = []
    for path in (paths["activations"], copied):
        out = tmp_path / f"vinfo_{path.stem}.h5"
        compute_vinfo(
            spec,
            codes=codes,
            activations=path,
            data=paths["data"],
            dictionary=paths["dictionary"],
            out=out,
            factors_csv=tmp_path / "f.csv",
            seed=0,
            attrs={},
        )
        results.append({**store.read_h5(out), **store.read_attrs(out)})
    assert len(reads) == 2
    assert list(results[1]["merged_layers"]) == ["copy=layer2"]
    assert list(results[1]["layers"]) == ["input", "layer1", "layer2", "act"]
    np.testing.assert_array_equal(results[1]["iv"], results[0]["iv"])


def _run_stages(root: Path, paths: dict[str, Path], spec: ComplexitySpec) -> dict[str, dict]:
    cpu = torch.device("cpu")
    out = {name: root / f"{name}.h5" for name in ("codes", "vinfo", "redundancy", "importance")}
    encode_split(
        spec,
        dictionary=paths["dictionary"],
        activations=paths["activations"],
        checkpoint=paths["checkpoint"],
        out=out["codes"],
        device=cpu,
        attrs={},
    )
    compute_vinfo(
        spec, codes=out["codes"], activations=paths["activations"], data=paths["data"], dictionary=paths["dictionary"],
        out=out["vinfo"], factors_csv=root / "factors.csv", seed=0, attrs={},
    )  # fmt: skip
    compute_redundancy(
        spec, codes=out["codes"], activations=paths["activations"], layer="act", out=out["redundancy"], seed=0, attrs={}
    )
    compute_importance(
        spec, checkpoint=paths["checkpoint"], codes=out["codes"], activations=paths["activations"],
        dictionary=paths["dictionary"], out=out["importance"], attrs={},
    )  # fmt: skip
    results = {name: {**store.read_h5(path), **store.read_attrs(path)} for name, path in out.items()}
    results["usage"] = {"usage": report.usage(out["codes"])}
    z, images = report.top_samples(out["codes"], paths["activations"], paths["data"], "test", 3)
    results["top"] = {"codes": z, "images": images}
    return results


def test_stages_equal_across_chunk_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_complexity_inputs(tmp_path, N, d=16, n_layers=3, k=12, rows=128)
    spec = ComplexitySpec.from_dict({"dictionary": {"k": 12, "code_iterations": 200}})
    runs = []
    for budget in (1 << 30, 7000, 900):  # all rows at once, then chunk sizes (per stage) that do not divide N
        monkeypatch.setattr(store, "CHUNK_BYTES", budget)
        (tmp_path / str(budget)).mkdir()
        runs.append(_run_stages(tmp_path / str(budget), paths, spec))
    whole = runs[0]
    acts = store.read_h5(paths["activations"], "activations")
    atoms = torch.from_numpy(store.read_h5(paths["dictionary"])["atoms"])
    codes = coder(atoms, spec.dictionary).encode(torch.from_numpy(acts["layers"]["act"])).numpy()
    np.testing.assert_allclose(whole["codes"]["codes"], codes, atol=1e-6)
    for run in runs[1:]:
        for name, ref in whole.items():
            for key, value in ref.items():
                if np.asarray(value).dtype.kind == "f" and key != "codes_max_gap":  # gaps differ below code_tol
                    # float32 codes: the batched products round differently with the batch's size (~1e-5 relative)
                    tol = 1e-5 if key == "codes" else 1e-6
                    np.testing.assert_allclose(run[name][key], value, atol=tol, rtol=tol, err_msg=f"{name}/{key}")
                elif key == "codes_sums":  # the sums behind the error and accuracies, summed chunk by chunk
                    for part, total in value.items():
                        np.testing.assert_allclose(run[name][key][part], total, rtol=1e-6, err_msg=f"{name}/{part}")
                elif key not in ("codes_max_gap", "codes_iterations"):
                    assert np.all(run[name][key] == value), (name, key)
