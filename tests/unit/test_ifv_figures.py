"""The IFV stage end to end on constructed files: both selection rules, the critical-space count, stationarity apart
from "IFV recovers x", the medians per target kind, and the figures that show them (the logit-only test only at
the logits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.fv.objectives import unit
from featflow.fv.spec import FVSpec
from featflow.ifv.figures import at_logits, run_critical_space_figure
from featflow.ifv.run import run_ifv
from featflow.ifv.solve import project_target, z_matrix
from featflow.plots.fv import plot_ifv, plot_realizations, plot_reoptimize

N_F, N = 6, 12


def _spaces() -> list[np.ndarray]:
    """Nested critical spaces: (1, ..., 1)^perp (5 dims), also without e_2 (4 dims), and a 3-dim one."""
    ones, e2, e5 = np.ones(N_F), np.eye(N_F)[2], np.eye(N_F)[5]
    out = []
    for drop in ([ones], [ones, e2], [ones, e2, e5]):
        q, _ = np.linalg.qr(np.stack(drop, axis=1), mode="complete")
        out.append(q[:, len(drop) :])
    return out


def _files(root, aggregation: str = "identity", classes: int = N_F) -> dict[str, str]:
    """Realizations whose Jacobians have (1, ..., 1) and Z_k x~ in their co-kernel (x~ the target projected for
    the 5-dim space): stationary, and IFV exact there; the last 4 targets are canonical."""
    gen = torch.Generator().manual_seed(0)
    x = unit(torch.rand(N, N_F, generator=gen, dtype=torch.float64))
    x[-4:] = torch.eye(N_F, dtype=torch.float64)[:4]
    y = torch.rand(N, N_F, generator=gen, dtype=torch.float64) + 0.5
    spaces = _spaces()
    xt = project_target(x, y, 2, torch.from_numpy(spaces[0]))
    ones = torch.ones(N, N_F, dtype=torch.float64) / N_F**0.5
    q, _ = torch.linalg.qr(torch.stack([ones, (z_matrix(y, 2) @ xt[:, :, None]).squeeze(2)], dim=2))
    dy = torch.randn(N, N_F, 40, generator=gen, dtype=torch.float64)
    dy = dy - q @ (q.transpose(1, 2) @ dy)
    files = {name: str(root / f"{name}.h5") for name in ("realizations", "jacobian", "critical", "ifv", "data")}
    canonical = np.arange(N) >= N - 4
    objective = np.where(canonical, -0.3, 0.5)
    arrays = {
        "targets": x.numpy(),
        "responses": y.numpy(),
        "canonical": canonical,
        "grad_norm": np.zeros(N),
        "objective": objective,
        "images": np.random.default_rng(0).uniform(size=(N, 1, 16, 16)),
    }
    config = {"aggregation": aggregation, "layer": "fc"}
    store.write_h5(files["realizations"], "fv_realizations", arrays, {"config": config, "piecewise_linear": False})
    store.write_h5(files["jacobian"], "fv_jacobian", {"gram": (dy @ dy.transpose(1, 2)).numpy()}, {})
    critical = {"rho": np.array([1e-6, 1e-3, 1e-1]), "dim": np.array([5, 4, 3])}
    critical["bases"] = {f"space_{i}": b for i, b in enumerate(spaces)}
    store.write_h5(files["critical"], "fv_critical_space", critical, {})
    store.write_h5(files["data"], "dataset", {}, {"classes": [str(c) for c in range(classes)]})
    return files


def _run(root, select: str = "paper", **kwargs) -> dict[str, str]:
    files = _files(root, **kwargs)
    spec = FVSpec.from_dict({"model": "m", "layer": "fc", "critical_space": {"select": select}})
    files["table"], files["medians"] = str(root / "ifv.csv"), str(root / "ifv_medians.csv")
    run_ifv(
        spec,
        files["realizations"],
        files["jacobian"],
        files["critical"],
        out=files["ifv"],
        table=files["table"],
        medians=files["medians"],
        seed=0,
        attrs={},
    )
    return files


def test_ifv_records_both_selections_stationarity_and_medians_per_kind(tmp_path):
    files = _run(tmp_path)
    attrs, data = store.read_attrs(files["ifv"]), store.read_h5(files["ifv"])
    # the 5-dim space makes every prediction exact; the 3- and 4-dim ones are not better on median angle
    assert attrs["critical_dim_paper"] == 5 and attrs["selection_rule"] == "paper" and attrs["critical_dim"] == 5
    assert attrs["n_critical_spaces"] == 3 and "critical_dim_chance" in attrs
    assert np.median(data["angle"]["prediction"]) < 1e-3
    assert data["stationary"].all() and data["recovers"].dtype == bool
    table = pd.read_csv(files["table"])
    assert (table["label"] == "stationary").all() and {"recovers", "grad_rel_prediction"} <= set(table)
    medians = pd.read_csv(files["medians"]).set_index(["kind", "objective"])
    assert medians.loc[("sparse", "prediction"), "n"] == N - 4 and medians.loc[("canonical", "random"), "n"] == 4
    assert medians.loc[("sparse", "prediction"), "median"] < 1e-3
    (tmp_path / "chance").mkdir()
    chosen = _run(tmp_path / "chance", select="chance")
    assert store.read_attrs(chosen["ifv"])["selection_rule"] == "chance"


def test_critical_space_figure_counts_spaces_and_shows_the_logit_test_only_at_the_logits(tmp_path):
    files = _run(tmp_path)
    assert at_logits(files["realizations"], files["data"])
    out = tmp_path / "critical_space.png"
    run_critical_space_figure(files["critical"], files["ifv"], True, (2,), out)
    numbers = store.figure_numbers(out)
    assert numbers["distinct critical spaces"].startswith("3 (dims 5, 4, 3")
    assert numbers["space picked by the paper's rule (best projected angle)"] == "dim 5"
    assert numbers["space IFV uses"].startswith("dim 5")
    assert float(numbers["angle of ones to the complement of the 5-dim C (deg)"].split()[0]) < 1e-3
    assert float(numbers["angle of e2 to the complement of the 4-dim C (deg)"].split()[0]) < 1e-3
    conv = tmp_path / "conv"
    conv.mkdir()
    conv_files = _run(conv, aggregation="maxpool_mean", classes=10)
    assert not at_logits(conv_files["realizations"], conv_files["data"])
    run_critical_space_figure(conv_files["critical"], conv_files["ifv"], False, (), conv / "cs.png")
    conv_numbers = store.figure_numbers(conv / "cs.png")
    assert "distinct critical spaces" in conv_numbers and not any("angle of" in key for key in conv_numbers)


def test_figures_flag_negative_canonical_targets_unstable_and_per_kind_medians(tmp_path):
    files = _run(tmp_path)
    plot_realizations(files["realizations"], tmp_path / "real.png")
    real = store.figure_numbers(tmp_path / "real.png")
    assert real["canonical targets ending with S < 0"].startswith("4 of 4")
    assert real["sparse targets ending with S < 0"] == "0 of 8"
    plot_ifv(files["ifv"], files["medians"], tmp_path / "angular.png", tmp_path / "alpha.png")
    numbers = store.figure_numbers(tmp_path / "angular.png")
    assert any(key.startswith("IFV / response / random, sparse targets (n = 8") for key in numbers)
    assert numbers["IFV recovers x (residual ratio, uses the target)"].endswith(f"of {N}")
    reopt = tmp_path / "reoptimize.h5"
    ssim = {key: np.linspace(0.5, 1.0, 6) for key in ("target", "prediction", "response", "random")}
    store.write_h5(reopt, "fv_reoptimize", {"ssim": ssim, "unstable": ssim["target"] < 0.7}, {})
    plot_reoptimize(files["ifv"], reopt, tmp_path / "ssim.png")
    assert store.figure_numbers(tmp_path / "ssim.png")["unstable realizations (SSIM < threshold under the target)"] == (
        "2 of 6"
    )
