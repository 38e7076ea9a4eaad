"""Entry points of the IFV rules (``jacobian``, ``critical_space``, ``ifv``, ``reoptimize``; called by
featflow.ifv.stage)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.fv.objectives import angular_distance, unit
from featflow.fv.run import fv_dtype, load_features, realization_render
from featflow.fv.spec import FVSpec
from featflow.ifv.critical_space import critical_spaces, select_space
from featflow.ifv.jacobian import iter_jacobians
from featflow.ifv.reoptimize import random_objectives, reoptimize, unstable
from featflow.ifv.solve import (
    alpha_decomposition,
    fraction_in_space,
    predict,
    project_target,
    stationarity,
    stationary_flags,
)
from featflow.repro import torch_generator

log = logging.getLogger(__name__)


def run_jacobian(
    spec: FVSpec,
    checkpoint: str | Path,
    realizations: str | Path,
    out: str | Path,
    *,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Dy of every realization (kind ``fv_jacobian``): ``gram`` Dy Dy^T (n, n_f, n_f) always, in float64 (its
    small singular values, which Algorithm 1 and the stationarity check read, are lost in float32 below
    ~3e-4 ||Dy||), ``dy`` (n, n_f, n_p) when ``store_jacobian``, and the responses (n, n_f)."""
    fn, shape, n_f = load_features(spec, checkpoint, device)
    real = store.read_h5(realizations, "fv_realizations")
    params = torch.from_numpy(real["params"]).to(fv_dtype(spec))
    render = realization_render(spec, shape, real)
    n, n_p = params.shape[0], int(np.prod(params.shape[1:]))
    with store.h5_writer(out, "fv_jacobian", {**attrs, "n_p": n_p, "n_f": n_f}) as handle:
        gram = store.create_array(handle, "gram", shape=(n, n_f, n_f), dtype="float64")
        resp = store.create_array(handle, "responses", shape=(n, n_f), dtype="float32")
        dy = store.create_array(handle, "dy", shape=(n, n_f, n_p), dtype="float32") if spec.store_jacobian else None
        for start, jac, y in iter_jacobians(fn, render, params, device, spec.sample_chunk, spec.jacobian_chunk):
            stop = start + jac.shape[0]
            jac64 = jac.double()
            gram[start:stop] = (jac64 @ jac64.transpose(1, 2)).cpu().numpy()
            resp[start:stop] = y.float().cpu().numpy()
            if dy is not None:
                dy[start:stop] = jac.float().cpu().numpy()
    log.info("Jacobians of %d realizations, n_f = %d, n_p = %d (stored: %s)", n, n_f, n_p, spec.store_jacobian)


def run_critical_space(spec: FVSpec, jacobian: str | Path, out: str | Path, *, attrs: dict[str, Any]) -> None:
    """Every distinct critical space of Algorithm 1 over rho (kind ``fv_critical_space``): ``rho`` (m,),
    ``dim`` (m,), ``bases/space_<i>`` (n_f, dim_i)."""
    cs = spec.critical_space
    with store.h5_reader(jacobian, "fv_jacobian") as handle:
        gram = torch.from_numpy(handle["gram"][: cs.n_samples])
    spaces = critical_spaces(gram, cs.rho_min, cs.rho_max, cs.grid)
    log.info("critical spaces (rho, dim): %s", [(f"{s.rho:.2e}", s.dim) for s in spaces])
    store.write_h5(
        out,
        "fv_critical_space",
        {
            "rho": np.array([s.rho for s in spaces]),
            "dim": np.array([s.dim for s in spaces]),
            "bases": {f"space_{i}": s.basis.numpy() for i, s in enumerate(spaces)},
        },
        {**attrs, "n_samples": int(gram.shape[0])},
    )


def score_spaces(
    gram: torch.Tensor, y: torch.Tensor, x: torch.Tensor, k: int, bases: list[torch.Tensor | None], chance: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, dict[str, int]]:
    """Predictions for every candidate space C (None: R^{n_f}), scored as the paper does: prediction and target
    both projected onto Z_k^{-1} C. Returns (predictions, projected angles (m, n), chance angles (m, n), the index
    each rule of :func:`featflow.ifv.critical_space.select_space` picks).

    ``chance`` (n, n_f) are random objectives projected the same way (the chance level of featflow's rule).
    """
    preds = [predict(gram, y, k, b) for b in bases]
    angles = torch.stack(
        [angular_distance(p.double(), project_target(x, y, k, b)) for p, b in zip(preds, bases, strict=True)]
    )
    chances = torch.stack(
        [angular_distance(project_target(chance, y, k, b), project_target(x, y, k, b)) for b in bases]
    )
    dims = torch.tensor([x.shape[1] if b is None else b.shape[1] for b in bases])
    return preds, angles, chances, select_space(angles.median(1).values, chances.median(1).values, dims)


def median_table(
    angles: dict[str, torch.Tensor], canonical: np.ndarray, seed: int, resamples: int = 2000
) -> pd.DataFrame:
    """Median angle (deg) per target kind (sparse, canonical, all) and objective, with a percentile bootstrap 95%
    interval over realizations: the sparse targets' geometry differs from the canonical ones' (a random
    non-negative vector is ~56 deg from a sparse target, ~78 deg from e_i), so one mixed median says little."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, mask in (("sparse", ~canonical), ("canonical", canonical), ("all", np.ones_like(canonical))):
        n = int(mask.sum())
        draws = rng.integers(0, n, (resamples, n)) if n > 1 else None
        for name, value in angles.items():
            v = value.double().numpy()[mask]
            low, high = (np.nan, np.nan) if draws is None else np.quantile(np.median(v[draws], axis=1), [0.025, 0.975])
            rows.append(
                {
                    "kind": kind,
                    "objective": name,
                    "n": n,
                    "median": np.median(v) if n else np.nan,
                    "low": low,
                    "high": high,
                }
            )
    return pd.DataFrame(rows)


def run_ifv(
    spec: FVSpec,
    realizations: str | Path,
    jacobian: str | Path,
    critical: str | Path,
    *,
    out: str | Path,
    table: str | Path,
    medians: str | Path,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """Predicted objectives for C = R^{n_f} and every critical space, scored by :func:`score_spaces` and chosen by
    ``fv.critical_space.select`` (both rules recorded); whether each realization is stationary (``grad_rel`` <=
    ``fv.stationarity.max_grad_rel``, FV's own first-order condition) and, separately, whether IFV recovers its
    target (residual ratio <= ``max_residual_ratio``, which needs the target). Writes kind ``ifv``, a
    per-sample table and the medians per target kind (:func:`median_table`)."""
    real = store.read_h5(realizations, "fv_realizations")
    kinks = bool(store.read_attrs(realizations, "fv_realizations").get("piecewise_linear", False))
    gram = torch.from_numpy(store.read_h5(jacobian, "fv_jacobian")["gram"]).double()
    spaces = store.read_h5(critical, "fv_critical_space")
    x, y = torch.from_numpy(real["targets"]).double(), torch.from_numpy(real["responses"]).double()
    bases = [None] + [torch.from_numpy(spaces["bases"][f"space_{i}"]) for i in range(len(spaces["dim"]))]
    bases = [b for b in bases if b is None or 0 < b.shape[1] < x.shape[1]]
    random = random_objectives(len(x), x.shape[1], torch_generator(seed + 2)).double()
    preds, space_angles, space_chance, picks = score_spaces(gram, y, x, spec.k, bases, random)
    best = picks[spec.critical_space.select]
    dims = [x.shape[1] if b is None else b.shape[1] for b in bases]
    angles = {
        "prediction": space_angles[best],
        "prediction_raw": angular_distance(preds[best].double(), x),
        "prediction_full": space_angles[0],
        "response": angular_distance(y, x),
        "random": angular_distance(random, x),
        "random_projected": space_chance[best],
    }
    check = stationarity(gram, y, x, spec.k, bases[best])
    check["residual_ratio_full"] = stationarity(gram, y, x, spec.k)["residual_ratio"]
    check["grad_rel_prediction"] = stationarity(gram, y, preds[best].double(), spec.k)["grad_rel"]
    flags = stationary_flags(check, spec.stationarity)
    canonical = real["canonical"].astype(bool)
    med = {key: value.median().item() for key, value in angles.items()}
    log.info(
        "critical spaces: %(n)d distinct (dims %(dims)s); the paper's rule picks dim %(paper)d, featflow's chance "
        "rule dim %(chance)d; used (fv.critical_space.select = %(select)s): dim %(used)d",
        {
            "n": len(spaces["dim"]),
            "dims": ", ".join(str(int(d)) for d in spaces["dim"]),
            "paper": dims[picks["paper"]],
            "chance": dims[picks["chance"]],
            "select": spec.critical_space.select,
            "used": dims[best],
        },
    )
    log.info(
        "IFV median angular distance (deg): prediction %(prediction).2f projected onto Z^-1 C (dim C = %(dim)d), "
        "%(prediction_raw).2f raw; full space %(prediction_full).2f; feature response %(response).2f; random "
        "%(random).2f (%(random_projected).2f projected)",
        {**med, "dim": dims[best]},
    )
    n_bad, n_recovered = int((~flags["stationary"]).sum()), int(flags["recovers"].sum())
    log.info(
        "stationarity: median grad_rel %.2e (under IFV's prediction: %.2e); IFV recovers x (residual ratio <= %g, "
        "uses the target) on %d of %d",
        check["grad_rel"].median().item(),
        check["grad_rel_prediction"].median().item(),
        spec.stationarity.max_residual_ratio,
        n_recovered,
        len(x),
    )
    if n_bad:
        log.warning(
            "%d of %d realizations are not stationary (grad_rel > fv.stationarity.max_grad_rel = %g)%s: IFV "
            "presupposes a stationary point, their predictions are unreliable (more lbfgs_steps, dtype float64, "
            "or the ball parametrization)",
            n_bad,
            len(x),
            spec.stationarity.max_grad_rel,
            " on a piecewise-linear network (ReLU / max pooling), whose FV optima sit on kinks where the gradient "
            "does not vanish"
            if kinks
            else "",
        )
    alpha = alpha_decomposition(gram, y, x, spec.k)
    fraction = fraction_in_space(x, y, spec.k, bases[best])
    store.write_h5(
        out,
        "ifv",
        {
            "prediction": preds[best].numpy(),
            "prediction_full": preds[0].numpy(),
            "angle": {key: value.float().numpy() for key, value in angles.items()},
            "alpha": alpha.numpy(),
            "space_dim": np.array(dims),
            "space_median_angle": space_angles.median(1).values.numpy(),
            "space_median_chance": space_chance.median(1).values.numpy(),
            "stationarity": {key: value.numpy() for key, value in check.items()},
            "stationary": flags["stationary"].numpy(),
            "recovers": flags["recovers"].numpy(),
            "fraction_in_space": fraction.float().numpy(),
        },
        {
            **attrs,
            "critical_dim": dims[best],
            "critical_dim_paper": dims[picks["paper"]],
            "critical_dim_chance": dims[picks["chance"]],
            "selection_rule": spec.critical_space.select,
            "n_critical_spaces": len(spaces["dim"]),
            "n_nonstationary": n_bad,
            "n_recovered": n_recovered,
            "piecewise_linear": kinks,
        },
    )
    frame = pd.DataFrame({f"angle_{key}": value.float().numpy() for key, value in angles.items()})
    frame.insert(0, "canonical", canonical)
    frame.insert(1, "grad_norm", real["grad_norm"])
    frame.insert(2, "stationary", flags["stationary"].numpy())
    frame.insert(3, "recovers", flags["recovers"].numpy())
    frame.insert(4, "label", stationarity_labels(flags["stationary"].numpy(), kinks))
    for key, value in check.items():
        frame[key] = value.numpy()
    frame["fraction_in_space"] = fraction.float().numpy()
    store.write_table(frame, table)
    kept = {key: angles[key] for key in ("prediction", "response", "random")}
    store.write_table(median_table(kept, canonical, seed + 4), medians)


def stationarity_labels(stationary: np.ndarray, piecewise_linear: bool) -> np.ndarray:
    """Per realization, in words: ``stationary``, ``not stationary``, or on a piecewise-linear network (ReLU, max
    pooling) ``not stationary (piecewise-linear network)``: there FV's optima sit on kinks where the gradient does
    not vanish, so no gradient limit passes them however long FV runs (measured on cnn block3.1: grad_rel
    0.17-0.20 after 4x the steps); IFV's first-order condition holds there only approximately."""
    other = "not stationary (piecewise-linear network)" if piecewise_linear else "not stationary"
    return np.where(stationary, "stationary", other)


def run_reoptimize(
    spec: FVSpec,
    checkpoint: str | Path,
    realizations: str | Path,
    ifv: str | Path,
    out: str | Path,
    *,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """SSIM between each realization and its re-optimization under target, prediction, feature response and a
    random objective (kind ``fv_reoptimize``): ``ssim/<objective>`` (n,), ``unstable`` (n,)."""
    fn, shape, _ = load_features(spec, checkpoint, device)
    real = store.read_h5(realizations, "fv_realizations")
    n = (
        real["params"].shape[0]
        if spec.reoptimize.n_samples is None
        else min(spec.reoptimize.n_samples, real["params"].shape[0])
    )
    pred = store.read_h5(ifv, "ifv")["prediction"][:n]
    x = torch.from_numpy(real["targets"][:n])
    objectives = {
        "target": x,
        "prediction": torch.from_numpy(pred),
        "response": unit(torch.from_numpy(real["responses"][:n])),
        "random": random_objectives(n, x.shape[1], torch_generator(seed + 3)),
    }
    objectives = {key: value.to(fv_dtype(spec)) for key, value in objectives.items()}
    render = realization_render(spec, shape, real)
    scores = reoptimize(
        fn,
        render,
        torch.from_numpy(real["params"][:n]).to(fv_dtype(spec)),
        objectives,
        spec.k,
        spec.reoptimize.steps,
        device=device,
        lr=spec.lr,
        batch_size=spec.batch_size,
    )
    flags = unstable(scores["target"], spec.reoptimize.unstable_ssim)
    log.info(
        "median SSIM after re-optimization: %s; unstable realizations: %d of %d",
        {key: round(value.median().item(), 3) for key, value in scores.items()},
        int(flags.sum()),
        n,
    )
    store.write_h5(
        out,
        "fv_reoptimize",
        {"ssim": {key: value.numpy() for key, value in scores.items()}, "unstable": flags.numpy()},
        attrs,
    )
