"""The FV/IFV branch's outputs of the tiny DAG run: files, shapes, provenance, and the headline property
(IFV predictions closer to the targets than the feature response; tiny size: n_f 6, 4 + 6 targets)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featflow import store

N_F, N_TARGETS = 6, 10  # tiny.yaml: n_f 6, n_sparse 4 + 6 canonical


def test_fv_files_shapes_and_provenance(dag_run):
    root = dag_run / "results/fv/tiny"
    targets = store.read_h5(root / "targets.h5", "fv_targets")
    assert targets["targets"].shape == (N_TARGETS, N_F)
    np.testing.assert_allclose(np.linalg.norm(targets["targets"], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(targets["hoyer"][:4], targets["sparsity"][:4], atol=1e-4)
    real = store.read_h5(root / "realizations.h5", "fv_realizations")
    assert real["images"].shape == (N_TARGETS, 3, 32, 32) and real["responses"].shape == (N_TARGETS, N_F)
    assert real["params"].shape == (N_TARGETS, 3, 32, 32) and np.all(real["grad_norm"] >= 0)
    jac = store.read_h5(root / "jacobian.h5", "fv_jacobian")
    assert jac["dy"].shape == (N_TARGETS, N_F, 3 * 32 * 32) and jac["gram"].shape == (N_TARGETS, N_F, N_F)
    np.testing.assert_allclose(jac["gram"][0], jac["dy"][0] @ jac["dy"][0].T, rtol=1e-3, atol=1e-6)
    spaces = store.read_h5(root / "critical_space.h5", "fv_critical_space")
    assert spaces["dim"][0] <= N_F and np.all(np.diff(spaces["dim"]) < 0)
    for i, dim in enumerate(spaces["dim"]):
        basis = spaces["bases"][f"space_{i}"]
        np.testing.assert_allclose(basis.T @ basis, np.eye(dim), atol=1e-5)
    reopt = store.read_h5(root / "reoptimize.h5", "fv_reoptimize")
    assert set(reopt["ssim"]) == {"target", "prediction", "response", "random"}
    assert reopt["ssim"]["target"].shape == (4,)
    for name in ("targets", "realizations", "jacobian", "critical_space", "ifv", "reoptimize"):
        attrs = store.read_attrs(root / f"{name}.h5")
        assert attrs["stage"] in ("fv", "ifv") and len(attrs["code_version"]) == 16
        assert attrs["config"]["layer"] == "block3.1"
    cross = store.read_h5(root / "cross/cnn-pgd.h5", "fv_cross")
    assert cross["prediction"].shape == (N_TARGETS, N_F) and cross["similarity"].shape == (N_F, N_F)
    np.testing.assert_array_equal(cross["target_index"], np.arange(4, N_TARGETS))
    for figure in ("realizations", "angular", "alpha", "ssim", "critical_space", "cross_cnn-pgd"):
        assert (root / f"figures/{figure}.png").stat().st_size > 5_000


def test_ifv_beats_the_feature_response(dag_run):
    root = dag_run / "results/fv/tiny"
    ifv = store.read_h5(root / "ifv.h5", "ifv")
    angle = ifv["angle"]
    assert np.median(angle["prediction"]) < np.median(angle["response"]) < np.median(angle["random"])
    assert ifv["alpha"].shape == (N_F,) and abs(ifv["alpha"].sum() - 1) < 1e-3
    table = pd.read_csv(root / "ifv.csv")
    assert len(table) == N_TARGETS and table["canonical"].sum() == N_F
    np.testing.assert_allclose(table["angle_prediction"], angle["prediction"], rtol=1e-5)
    # a ReLU network at a conv layer: no realization passes as stationary, none is shown the logit-only test
    assert set(table["label"]) <= {"stationary", "not stationary (piecewise-linear network)"}
    assert not any(key.startswith("angle of") for key in store.figure_numbers(root / "figures/critical_space.png"))


LOGITS = ("digits_logits", "digits_no4_logits")  # tiny.yaml: 10 digit logits of smallcnn-smooth, ball, float64


def test_ifv_records_stationarity_and_scores_within_the_critical_space(dag_run):
    root = dag_run / "results/fv/tiny"
    ifv = store.read_h5(root / "ifv.h5", "ifv")
    assert store.read_h5(root / "jacobian.h5", "fv_jacobian")["gram"].dtype == np.float64
    assert set(ifv["stationarity"]) == {"residual_ratio", "residual_ratio_full", "grad_rel", "grad_rel_prediction"}
    # stationarity is FV's gradient test alone; "IFV recovers x" (the residual ratio, which reads x) is apart
    np.testing.assert_array_equal(ifv["stationary"], ifv["stationarity"]["grad_rel"] <= 1e-3)  # tiny: the default
    assert ifv["recovers"].dtype == bool and set(pd.read_csv(root / "ifv_medians.csv")["kind"]) == {
        "sparse",
        "canonical",
        "all",
    }
    assert np.all(ifv["stationarity"]["residual_ratio"] >= 1 - 1e-3)
    assert ifv["stationary"].dtype == bool and ifv["stationary"].shape == (N_TARGETS,)
    table = pd.read_csv(root / "ifv.csv")
    np.testing.assert_array_equal(table["stationary"], ifv["stationary"])
    np.testing.assert_allclose(table["angle_prediction_raw"], ifv["angle"]["prediction_raw"], rtol=1e-5)
    assert store.read_attrs(root / "ifv.h5")["n_nonstationary"] == int((~ifv["stationary"]).sum())


def test_logit_critical_space_holds_the_softmax_translation_invariance(dag_run):
    """The paper's classification-layer result (Sec. 3.5): the complement of the largest critical space is
    spanned by (1, ..., 1); inverse FV fails in R^10 and works within C (scored on Z^-1 C, as the paper does)."""
    for name in LOGITS:
        root = dag_run / "results/fv" / name
        spaces = store.read_h5(root / "critical_space.h5", "fv_critical_space")
        basis = spaces["bases"]["space_0"]
        assert spaces["dim"][0] <= 9
        ones = np.ones(10) / np.sqrt(10)
        in_c = np.linalg.norm(basis.T @ ones)  # (1, ..., 1) orthogonal to C: inside its complement
        assert np.degrees(np.arcsin(min(1.0, in_c))) < 3.0
        ifv = store.read_h5(root / "ifv.h5", "ifv")
        angle = ifv["angle"]
        assert store.read_attrs(root / "ifv.h5")["critical_dim"] < 10
        assert np.median(angle["prediction"]) < 2.0 and np.median(angle["prediction_full"]) > 30.0
        assert ifv["stationary"].mean() >= 0.75
        figure = dag_run / f"results/fv/{name}/figures/critical_space.png"
        assert "distinct critical spaces" in store.figure_numbers(figure)


def _angle_to_complement(basis: np.ndarray, v: np.ndarray) -> float:
    """Degrees between v and the orthogonal complement of span(basis) (orthonormal columns)."""
    v = v / np.linalg.norm(v)
    return float(np.degrees(np.arcsin(min(1.0, np.linalg.norm(basis.T @ v)))))


def test_a_class_never_seen_joins_the_complement(dag_run):
    """The paper's DN4cl result (Sec. 3.5): for the network never trained on class 4, a second critical space of
    8 dims has a complement spanned by (1, ..., 1) and e_4; for the network that saw class 4, e_4 stays far out."""
    e4, ones = np.eye(10)[4], np.ones(10)
    angles = {}
    for name in LOGITS:
        spaces = store.read_h5(dag_run / "results/fv" / name / "critical_space.h5", "fv_critical_space")
        (hit,) = np.flatnonzero(spaces["dim"] == 8)
        basis = spaces["bases"][f"space_{hit}"]
        assert _angle_to_complement(basis, ones) < 3.0
        angles[name] = _angle_to_complement(basis, e4)
    assert angles["digits_no4_logits"] < 15.0, angles
    assert angles["digits_logits"] > 25.0, angles  # default run: 6.3 vs 68.5 deg; tiny: 8.7 vs 32.8
    numbers = store.figure_numbers(dag_run / "results/fv/digits_no4_logits/figures/critical_space.png")
    assert float(numbers["angle of e4 to the complement of the 8-dim C (deg)"].split()[0]) < 15.0
