"""Stage entry points of the IFV rules (``jacobian``, ``critical_space``, ``ifv``, ``reoptimize``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.fv.objectives import angular_distance, unit
from featflow.fv.param import make_render
from featflow.fv.spec import FVSpec
from featflow.fv.stage import load_features
from featflow.ifv.critical_space import critical_spaces
from featflow.ifv.jacobian import iter_jacobians
from featflow.ifv.reoptimize import random_objectives, reoptimize, unstable
from featflow.ifv.solve import alpha_decomposition, predict
from featflow.repro import torch_generator

log = logging.getLogger(__name__)


def run_jacobian(
    spec: FVSpec,
    checkpoint: str | Path,
    realizations: str | Path,
    out: str | Path,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Dy of every realization (kind ``fv_jacobian``): ``gram`` Dy Dy^T (n, n_f, n_f) always, ``dy``
    (n, n_f, n_p) when ``store_jacobian``, and the responses (n, n_f)."""
    fn, shape, n_f = load_features(spec, checkpoint, device)
    real = store.read_h5(realizations, "fv_realizations")
    params = torch.from_numpy(real["params"])
    render = make_render(spec.parametrization, shape, spec.decorrelate)
    n, n_p = params.shape[0], int(np.prod(params.shape[1:]))
    with store.h5_writer(out, "fv_jacobian", {**attrs, "n_p": n_p, "n_f": n_f}) as handle:
        gram = store.create_array(handle, "gram", shape=(n, n_f, n_f), dtype="float32")
        resp = store.create_array(handle, "responses", shape=(n, n_f), dtype="float32")
        dy = store.create_array(handle, "dy", shape=(n, n_f, n_p), dtype="float32") if spec.store_jacobian else None
        for start, jac, y in iter_jacobians(fn, render, params, device, spec.sample_chunk, spec.jacobian_chunk):
            stop = start + jac.shape[0]
            jac64 = jac.double()
            gram[start:stop] = (jac64 @ jac64.transpose(1, 2)).float().cpu().numpy()
            resp[start:stop] = y.cpu().numpy()
            if dy is not None:
                dy[start:stop] = jac.cpu().numpy()
    log.info("Jacobians of %d realizations, n_f = %d, n_p = %d (stored: %s)", n, n_f, n_p, spec.store_jacobian)


def run_critical_space(spec: FVSpec, jacobian: str | Path, out: str | Path, attrs: dict[str, Any]) -> None:
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


def run_ifv(
    spec: FVSpec,
    realizations: str | Path,
    jacobian: str | Path,
    critical: str | Path,
    out: str | Path,
    table: str | Path,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """Predicted objectives for C = R^{n_f} and every critical space; the space with the best median angular
    distance to the targets is kept (the paper's practice). Writes kind ``ifv`` and a per-sample table."""
    real = store.read_h5(realizations, "fv_realizations")
    gram = torch.from_numpy(store.read_h5(jacobian, "fv_jacobian")["gram"])
    spaces = store.read_h5(critical, "fv_critical_space")
    x, y = torch.from_numpy(real["targets"]), torch.from_numpy(real["responses"])
    bases = [None] + [torch.from_numpy(spaces["bases"][f"space_{i}"]) for i in range(len(spaces["dim"]))]
    bases = [b for b in bases if b is None or 0 < b.shape[1]]
    preds = [predict(gram, y, spec.k, b) for b in bases]
    medians = torch.stack([angular_distance(p, x).median() for p in preds])
    best = int(medians.argmin())
    angles = {
        "prediction": angular_distance(preds[best], x),
        "prediction_full": angular_distance(preds[0], x),
        "response": angular_distance(y, x),
        "random": angular_distance(random_objectives(len(x), x.shape[1], torch_generator(seed + 2)), x),
    }
    dims = [x.shape[1] if b is None else b.shape[1] for b in bases]
    med = {key: value.median().item() for key, value in angles.items()}
    log.info(
        "IFV median angular distance (deg): prediction %.2f (dim C = %d), full space %.2f, feature response "
        "%.2f, random %.2f",
        med["prediction"],
        dims[best],
        med["prediction_full"],
        med["response"],
        med["random"],
    )
    alpha = alpha_decomposition(gram, y, x, spec.k)
    store.write_h5(
        out,
        "ifv",
        {
            "prediction": preds[best].numpy(),
            "prediction_full": preds[0].numpy(),
            "angle": {key: value.numpy() for key, value in angles.items()},
            "alpha": alpha.numpy(),
            "space_dim": np.array(dims),
            "space_median_angle": medians.numpy(),
        },
        {**attrs, "critical_dim": dims[best]},
    )
    frame = pd.DataFrame({f"angle_{key}": value.numpy() for key, value in angles.items()})
    frame.insert(0, "canonical", real["canonical"].astype(bool))
    frame.insert(1, "grad_norm", real["grad_norm"])
    store.write_table(frame, table)


def run_reoptimize(
    spec: FVSpec,
    checkpoint: str | Path,
    realizations: str | Path,
    ifv: str | Path,
    out: str | Path,
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
    render = make_render(spec.parametrization, shape, spec.decorrelate)
    scores = reoptimize(
        fn,
        render,
        torch.from_numpy(real["params"][:n]),
        objectives,
        spec.k,
        spec.reoptimize.steps,
        device,
        spec.lr,
        spec.batch_size,
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
