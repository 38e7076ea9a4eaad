"""Cross-network inversion (beyond the paper, its stated future work): which objective of network B's
features would a realization of network A be a stationary point of? Inverting A's canonical realizations
e_i with B gives a feature-to-feature similarity matrix between A's and B's features."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.fv.run import fv_dtype, load_features, realization_render
from featflow.fv.spec import FVSpec
from featflow.ifv.jacobian import iter_jacobians
from featflow.ifv.solve import predict

log = logging.getLogger(__name__)


def invert_with(
    fn_b: Any,
    render: Any,
    params: torch.Tensor,
    k: int,
    *,
    device: torch.device,
    sample_chunk: int = 16,
    feature_chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """IFV of realizations (params (n, *param_shape), rendered by ``render``) through network B's feature
    function ``fn_b``; returns B's predicted objectives (n, n_f_B) and responses (n, n_f_B)."""
    grams, responses = [], []
    for _, jac, y in iter_jacobians(fn_b, render, params, device, sample_chunk, feature_chunk):
        jac = jac.double()
        grams.append((jac @ jac.transpose(1, 2)).cpu())
        responses.append(y.cpu())
    y = torch.cat(responses)
    return predict(torch.cat(grams), y, k), y


def run_cross(
    spec_a: FVSpec,
    model_b: str,
    checkpoint_b: str | Path,
    realizations_a: str | Path,
    out: str | Path,
    *,
    device: torch.device,
    attrs: dict[str, Any],
) -> None:
    """Invert experiment A's realizations with model B at A's layer, aggregation, n_f and k (kind
    ``fv_cross``): ``prediction`` (n, n_f_B), ``similarity`` (n_f_A, n_f_B) from A's canonical realizations
    (row i: the B-objective explaining A's visualization of e_i)."""
    spec_b = dataclasses.replace(spec_a, model=model_b)
    fn_b, shape_b, _ = load_features(spec_b, checkpoint_b, device)
    real = store.read_h5(realizations_a, "fv_realizations")
    shape_a = tuple(int(s) for s in store.read_attrs(realizations_a)["image_shape"])
    if shape_a != shape_b:
        raise ValueError(
            f"fv.invert_with: model '{spec_b.model}' takes images {shape_b}, the realizations of "
            f"'{spec_a.model}' are {shape_a}"
        )
    render = realization_render(spec_a, shape_a, real)
    pred, _ = invert_with(
        fn_b,
        render,
        torch.from_numpy(real["params"]).to(fv_dtype(spec_b)),
        spec_b.k,
        device=device,
        sample_chunk=spec_b.sample_chunk,
        feature_chunk=spec_b.jacobian_chunk,
    )
    canonical = real["canonical"].astype(bool)
    similarity = pred.numpy()[canonical]
    hits = (similarity.argmax(1) == np.arange(len(similarity))).mean()  # canonical rows are e_1 .. e_n_f
    log.info(
        "cross inversion %s -> %s at %s: %d realizations; e_i explained best by B's feature i in %.0f%%",
        spec_a.model,
        model_b,
        spec_a.layer,
        len(pred),
        100 * hits,
    )
    store.write_h5(
        out,
        "fv_cross",
        {"prediction": pred.numpy(), "similarity": similarity, "target_index": np.flatnonzero(canonical)},
        attrs,
    )
