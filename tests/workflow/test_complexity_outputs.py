"""Outputs of the complexity branch after the tiny DAG: shapes, provenance, the planted-factor ranking."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from featflow import store

CX = Path("results/planted/complexity")


def _k(dag_run: Path) -> int:
    return yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]["dictionary"]["k"]


def test_dictionary_and_codes(dag_run: Path) -> None:
    k = _k(dag_run)
    dic = store.read_h5(dag_run / CX / "dictionary.h5", "complexity-dictionary")
    attrs = store.read_attrs(dag_run / CX / "dictionary.h5", "complexity-dictionary")
    acts = store.read_h5(dag_run / "results/planted/activations/test.h5", "activations")
    d = acts["layers"]["act"].shape[1]
    assert dic["atoms"].shape == (k, d) and k > d and (dic["atoms"] >= 0).all()
    assert attrs["stage"] == "dictionary" and attrs["layer"] == "act" and "code_version" in attrs
    assert 0 <= attrs["relative_error"] < 0.5
    codes = store.read_h5(dag_run / CX / "codes_test.h5", "complexity-codes")["codes"]
    assert codes.shape == (acts["labels"].shape[0], k) and (codes >= 0).all()


def test_feature_table(dag_run: Path) -> None:
    k = _k(dag_run)
    table = pd.read_parquet(dag_run / CX / "features.parquet")
    assert len(table) == k and len(pd.read_csv(dag_run / CX / "features.csv")) == k
    expected = {
        "complexity",
        "iv_input",
        "iv_act",
        "redundancy_p0.5",
        "participation",
        "sensitivity_s0.1",
        "sensitivity_s0.5",
        "importance",
        "importance_abs",
        "hoyer",
        "usage",
    }
    assert expected <= set(table.columns)
    assert len(table.attrs["redundancy_seed_rho"]["0.5"]) == table.attrs["redundancy_mask_seeds"] == 2  # tiny.yaml
    assert ((table["participation"] >= 1) | table["participation"].isna()).all()
    alive = table.dropna(subset=["complexity"])
    assert ((alive["complexity"] >= 0) & (alive["complexity"] <= 1)).all()
    assert np.allclose(alive["complexity"], 1 - alive.filter(like="iv_").mean(axis=1))
    assert (table["importance_abs"] >= table["importance"].abs() - 1e-9).all()
    for name in FIGURES:
        assert (dag_run / CX / "figures" / f"{name}.png").stat().st_size > 1000


def test_planted_factor_ranking(dag_run: Path) -> None:
    factors = pd.read_csv(dag_run / CX / "factors.csv").set_index("factor")["complexity"]
    # SPEC 5.1: color is linear in the pooled input, orientation needs local filters, parity needs counting
    assert factors["color"] < factors["orientation"] < factors["parity"]


def test_k_does_not_depend_on_the_code_solver(dag_run: Path) -> None:
    """Issue 12.1: K from featflow's ridge codes and from scipy's nnls on the augmented system
    [D^T; sqrt(mu) I] z = [a; 0] (an independent exact solver) agree."""
    from scipy.optimize import nnls
    from scipy.stats import spearmanr

    from featflow.metrics import vinfo

    cfg = yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]
    atoms = store.read_h5(dag_run / CX / "dictionary.h5", "complexity-dictionary")["atoms"].astype(np.float64)
    acts = store.read_h5(dag_run / "results/planted/activations/test.h5", "activations")
    ours = store.read_h5(dag_run / CX / "codes_test.h5", "complexity-codes")["codes"]
    mu = cfg["dictionary"].get("code_ridge", 1e-2) * (atoms**2).sum(1).mean()
    k = atoms.shape[0]
    aug = np.vstack([atoms.T, np.sqrt(mu) * np.eye(k)])
    ref = np.stack([nnls(aug, np.concatenate([row, np.zeros(k)]))[0] for row in acts["layers"]["act"]])
    layers = {name: acts["layers"][name] for name in ("block1", "block2", "block3", "act")}
    k_ours, k_ref = (vinfo.complexity(vinfo.v_information(layers, z)) for z in (ours, ref))
    ok = np.isfinite(k_ours) & np.isfinite(k_ref)
    assert spearmanr(k_ours[ok], k_ref[ok]).statistic > 0.98


def test_table_metadata_records_stability_noise_accuracy_and_merged_layers(dag_run: Path) -> None:
    """Issues 12.1-12.3: K's stability across NMF seeds, accuracy under every sigma, and the identical layers
    (block3 == pool under global average pooling) counted once."""
    meta = pd.read_parquet(dag_run / CX / "features.parquet").attrs
    sigmas = yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]["robustness"]["sigmas"]
    assert -1 <= meta["k_seed_spearman"] <= 1 and 0 < meta["atom_match_cosine_median"] <= 1
    assert set(meta["noise_accuracy"]) == {f"{s:g}" for s in sigmas}
    assert meta["merged_layers"] == ["pool=block3"] and "pool" not in meta["layers"]
    vi = store.read_h5(dag_run / CX / "vinfo.h5", "complexity-vinfo")
    assert vi["iv"].shape[0] == len(meta["layers"])  # K averages over distinct layers, the dictionary layer included
    assert meta["dictionary_layer"] == "act" and meta["layers"][-1] == "act"
    assert "features.html" in {p.name for p in (dag_run / CX).iterdir()}
    assert "k_seed_spearman" in (dag_run / CX / "features.html").read_text()


def test_sensitivity_rises_with_sigma_over_the_unflagged_levels(dag_run: Path) -> None:
    """Issue 12.2: a level at chance is flagged; over the others, sensitivity rises with sigma for >= 90% of
    features."""
    from featflow.metrics.robustness import at_chance

    rob = store.read_h5(dag_run / CX / "robustness.h5", "complexity-robustness")
    n = yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]["robustness"]["images"]
    labels = store.read_h5(dag_run / "results/data/planted.h5", "dataset")["test"]["y"][:n]
    assert list(rob["at_chance"]) == at_chance(list(rob["accuracy"]), np.bincount(labels))
    keep = ~np.asarray(rob["at_chance"], bool)
    if keep.sum() < 2:  # the tiny model may not read the images at all (every level at chance): nothing to rank
        assert rob["accuracy"].max() < 0.5
        return
    sens = rob["sensitivity"][keep][np.argsort(rob["sigmas"][keep])]
    alive = np.isfinite(sens).all(0)
    assert (np.diff(sens[:, alive], axis=0) > 0).all(0).mean() >= 0.9


def test_every_complexity_figure_carries_this_runs_numbers(dag_run: Path) -> None:
    """Issues 12.3, 12.7: the numbers are in each figure; rho with bootstrap intervals; the planted ranking."""
    numbers = {name: store.figure_numbers(dag_run / CX / "figures" / f"{name}.png") for name in FIGURES}
    assert all(numbers.values())
    rob = store.read_h5(dag_run / CX / "robustness.h5", "complexity-robustness")
    for sigma, bad in zip(rob["sigmas"], rob["at_chance"], strict=True):
        assert (f"rho(K, sensitivity_s{sigma:g})" in numbers["relations"]) is not bool(bad)
    assert "[" in numbers["relations"]["rho(K, redundancy_p0.5)"]  # a bootstrap interval
    assert "[" in numbers["relations"]["rho(K, participation ratio of X^T z_i)"]
    assert any(key.startswith("rho(K, redundancy_p0.5) per mask seed") for key in numbers["relations"])
    factors = pd.read_csv(dag_run / CX / "factors.csv").set_index("factor")["complexity"]
    assert numbers["iv_curves"]["K(parity)"] == f"{factors['parity']:.3f}"
    assert numbers["iv_curves"]["planted ranking K(color) < K(orientation) < K(parity)"] == "holds"
    summary = (dag_run / "results/summary.rst").read_text()
    assert "planted ranking" in summary and "Theory" in summary


FIGURES = ("importance", "iv_curves", "relations", "umap", "top_images", "pictures", "meta_features")


def test_feature_pictures_drive_their_features(dag_run: Path) -> None:
    """Issues 17.4, 26.5: pictures of the simplest, most complex and requested features at the dictionary's layer,
    pooled as the activations; each picture's own code is the branch encoder's code of its response, flagged when
    below the top image's or not the largest; the parametrization table and the meta-features are written."""
    from featflow.dictionary.nmf import coder
    from featflow.dictionary.spec import DictionarySpec
    from featflow.fv.atoms import PicturesSpec, response_fn
    from featflow.models import load_checkpoint

    cfg = yaml.safe_load((dag_run / "config" / "config.yaml").read_text())["complexity"]
    spec = PicturesSpec.from_dict(cfg["pictures"])
    pics = store.read_h5(dag_run / CX / "pictures.h5", "feature-pictures")
    attrs = store.read_attrs(dag_run / CX / "pictures.h5", "feature-pictures")
    assert attrs["layer"] == "act" and attrs["pool"] == "gap" and attrs["stage"] == "fv" and "code_version" in attrs
    assert attrs["target"] == "code" and attrs["start"] == "top"
    k = store.read_h5(dag_run / CX / "vinfo.h5", "complexity-vinfo")["complexity"]
    n = spec.n_features
    order = np.argsort(np.where(np.isnan(k), np.inf, k))[: int(np.isfinite(k).sum())]
    assert list(pics["feature"][:n]) == list(order[:n]) and list(pics["feature"][n : 2 * n]) == list(order[::-1][:n])
    assert set(spec.ids) <= set(pics["feature"]) and len(set(pics["feature"])) == len(pics["feature"])
    np.testing.assert_array_equal(pics["complexity"], k[pics["feature"]])
    m = len(pics["feature"])
    assert pics["images"].shape == (m, 3, 32, 32) and 0 <= pics["images"].min() and pics["images"].max() <= 1
    # the recorded code, ranks and cosine are the stored picture's, recomputed through the model and the encoder
    model, _ = load_checkpoint(dag_run / "results/models/cnn.pt")
    atoms_all = store.read_h5(dag_run / CX / "dictionary.h5", "complexity-dictionary")["atoms"]
    atoms = atoms_all[pics["feature"]]
    with torch.no_grad():
        y = response_fn(model, "act", "gap")(torch.from_numpy(pics["images"]))
        dictionary = DictionarySpec.from_dict(cfg["dictionary"])
        z = coder(torch.from_numpy(atoms_all).float(), dictionary).encode(y).numpy()
    y = y.numpy()
    rows = np.arange(m)
    np.testing.assert_allclose(z[rows, pics["feature"]], pics["code"], atol=1e-4, rtol=1e-3)
    cos = (y * atoms).sum(1) / np.linalg.norm(y, axis=1) / np.linalg.norm(atoms, axis=1)
    np.testing.assert_allclose(cos, pics["cosine"], atol=1e-4)
    assert (pics["best_data_rank"] >= 1).all() and (pics["rank"] >= 1).all() and (pics["code_rank"] >= 1).all()
    flag = (pics["code"] < pics["top_codes"][:, 0]) | (pics["code_rank"] > 1)
    np.testing.assert_array_equal(pics["flagged"], flag)
    # the pictures reach their features: every picture's code above the top image's (it starts there)
    assert (pics["code"] >= pics["top_codes"][:, 0]).all(), (pics["code"], pics["top_codes"][:, 0])
    # top-activating images: the largest codes of each feature, largest first
    codes = store.read_h5(dag_run / CX / "codes_test.h5", "complexity-codes")["codes"]
    assert pics["top_rows"].shape == (m, spec.top_images)
    assert (np.diff(pics["top_codes"], axis=1) <= 0).all()
    np.testing.assert_allclose(pics["top_codes"][:, 0], codes[:, pics["feature"]].max(0))
    numbers = store.figure_numbers(dag_run / CX / "figures" / "pictures.png")
    assert numbers["pictures flagged (own code below the top image's, or not the largest code)"].startswith(
        f"{int(flag.sum())}/{m}"
    )
    assert "requested features" in numbers or set(spec.ids) <= set(pics["feature"][: 2 * n])
    table = pd.read_csv(dag_run / CX / "pictures_parametrizations.csv")
    assert list(table["parametrization"].unique()) == list(spec.compare) and len(table) == m * len(spec.compare)
    rgb = table[table["parametrization"] == "rgb"]
    np.testing.assert_allclose(rgb["code"], pics["code"], rtol=1e-5)  # the main pictures, not made again
    meta = pd.read_csv(dag_run / CX / "meta_features.csv")
    members = np.concatenate([np.array(a.split(), dtype=int) for a in meta["atoms"]])
    assert sorted(members) == sorted(np.flatnonzero(np.linalg.norm(atoms_all, axis=1) > 0))  # each live atom once
    assert (np.diff(meta["mean_K"]) >= 0).all() and meta["n_atoms"].sum() == len(members)


def test_feature_flow_reads_each_path_of_the_residual_blocks(dag_run: Path) -> None:
    """Issue 17.5: I_V and CKA of every feature and planted factor from each residual block's skip path and main
    branch. Each block's output is an extracted layer, so its I_V must equal the complexity branch's I_V of that
    layer (the same estimator, split and rows, from another pass over other batch sizes)."""
    flow_dir = dag_run / "results/planted-res/complexity"
    flow = store.read_h5(flow_dir / "flow.h5", "complexity-flow")
    attrs = store.read_attrs(flow_dir / "flow.h5", "complexity-flow")
    vinfo = store.read_h5(flow_dir / "vinfo.h5", "complexity-vinfo")
    layers = list(store.read_attrs(flow_dir / "vinfo.h5", "complexity-vinfo")["layers"])
    k = _k(dag_run)
    assert list(attrs["blocks"]) == ["block1", "block2", "block3"] and list(attrs["paths"]) == ["skip", "main", "out"]
    assert list(attrs["identity_skip"]) == [True, False, False] and attrs["stored_deviation"] < 1e-5
    assert flow["iv"].shape == (3, 3, k) and flow["factor_iv"].shape[:2] == (3, 3)
    assert np.nanmin(flow["iv"]) >= 0 and np.nanmax(flow["iv"]) <= 1 and np.nanmax(flow["cka"]) <= 1 + 1e-9
    for b, block in enumerate(attrs["blocks"]):
        np.testing.assert_allclose(flow["iv"][2, b], vinfo["iv"][layers.index(block)], atol=1e-7)
    np.testing.assert_array_equal(flow["complexity"], vinfo["complexity"])
    table = pd.read_csv(flow_dir / "flow.csv")
    assert len(table) == k + len(attrs["factor_names"]) and set(table.kind) == {"feature", "factor"}
    share = flow["skip_share"]
    assert np.nanmin(share) >= 0 and np.nanmax(share) <= 1
    numbers = store.figure_numbers(flow_dir / "figures/flow.png")
    assert numbers["rho(K, skip share), I_V"].startswith(f"{attrs['spearman_k_skip_share']:+.3f} [")
    assert "color" in numbers["planted factors' skip share (I_V / CKA)"]
    retention = flow["retention"]  # the main-branch ablation: a correlation per block and feature
    assert retention.shape == (3, k) and np.nanmin(retention) >= -1 - 1e-9 and np.nanmax(retention) <= 1 + 1e-9
    np.testing.assert_allclose(table.retention_mean.to_numpy()[:k], retention.mean(0), atol=1e-12)
    key = "rho(K, code retention) under main-branch ablation, mean over blocks"
    assert numbers[key].startswith(f"{attrs['spearman_k_retention_mean']:+.3f} [")


def test_spatial_maps_of_the_sharded_extraction(dag_run: Path) -> None:
    """Issue 16.4 in the DAG: the per-position maps asked for come through the shard jobs and their merge, and
    average to the pooled vectors (pool gap)."""
    acts = store.read_h5(dag_run / "results/planted/activations/test.h5", "activations")
    maps = acts["spatial"]["block3"]
    assert maps.ndim == 4 and maps.shape[0] == acts["labels"].shape[0]
    np.testing.assert_allclose(maps.mean((2, 3)), acts["layers"]["block3"], atol=1e-5)
