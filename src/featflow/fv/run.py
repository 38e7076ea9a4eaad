"""Entry points of the FV rules (``fv_targets``, ``fv_optimize``; called by featflow.fv.stage): read inputs,
compute, write HDF5."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.data import load_split
from featflow.fv.optimize import feature_fn, piecewise_linear, visualize
from featflow.fv.param import Render, Spectrum, data_spectrum, make_render, param_shape
from featflow.fv.spec import FVSpec
from featflow.fv.targets import hoyer, make_targets
from featflow.models import load_checkpoint
from featflow.repro import torch_generator

log = logging.getLogger(__name__)


def fv_dtype(spec: FVSpec) -> torch.dtype:
    """The precision FV, Jacobians and re-optimization run in (``fv.dtype``): float64 lets L-BFGS reach
    gradients far below float32's resolution, which the logit experiments need."""
    if spec.dtype not in ("float32", "float64"):
        raise ValueError(f"fv.dtype '{spec.dtype}': expected float32 or float64")
    return getattr(torch, spec.dtype)


def load_features(spec: FVSpec, checkpoint: str | Path, device: torch.device) -> tuple[Any, tuple[int, int, int], int]:
    """(feature function, image shape (C, H, W), n_f) of the experiment's model (in ``fv.dtype``), layer and
    aggregation."""
    model, ckpt = load_checkpoint(checkpoint, device)
    model = model.to(fv_dtype(spec))
    shape = tuple(int(s) for s in ckpt["input_shape"])
    if len(shape) != 3:
        raise ValueError(f"fv.model '{spec.model}': FV needs an image model, input shape is {shape}")
    fn = feature_fn(model, spec.layer, spec.aggregation, spec.n_f)
    with torch.no_grad():
        n_f = int(fn(torch.full((1, *shape), 0.5, device=device, dtype=fv_dtype(spec))).shape[1])
    return fn, shape, n_f


def maco_spectrum(spec: FVSpec, data_path: str | Path | None) -> Spectrum | None:
    """MACO's fixed magnitude from the first ``fv.spectrum_images`` training images of the model's data set
    (``None`` for the other parametrizations, which need no data)."""
    if spec.parametrization != "maco":
        return None
    if data_path is None:
        raise ValueError(f"fv.parametrization 'maco' of model '{spec.model}': needs the model's data set file")
    return data_spectrum(load_split(data_path, "train", rows=slice(0, spec.spectrum_images)).x)


def realization_render(spec: FVSpec, shape: tuple[int, int, int], real: dict[str, np.ndarray]) -> Render:
    """The render of stored realizations: their parametrization, and for ``maco`` the magnitude spectrum
    fv_optimize stored beside them (``maco_magnitude``, ``maco_mean``), so later rules need no data set."""
    spectrum = None
    if spec.parametrization == "maco":
        if "maco_magnitude" not in real:
            raise ValueError("maco realizations without their stored spectrum: rerun the rule fv_optimize")
        spectrum = Spectrum(torch.from_numpy(real["maco_magnitude"]), torch.from_numpy(real["maco_mean"]))
    return make_render(spec.parametrization, shape, spec.decorrelate, spectrum)


def run_targets(spec: FVSpec, checkpoint: str | Path, out: str | Path, *, seed: int, attrs: dict[str, Any]) -> None:
    """Sample the experiment's targets (sparse, then canonical) and write them (kind ``fv_targets``)."""
    _, _, n_f = load_features(spec, checkpoint, torch.device("cpu"))
    drawn = make_targets(spec.n_sparse, n_f, spec.include_canonical, torch_generator(seed))
    arrays = {key: value.numpy() for key, value in drawn.items()}
    arrays["hoyer"] = hoyer(drawn["targets"]).numpy()
    err = np.abs(arrays["hoyer"] - arrays["sparsity"]).max()
    log.info("%d targets over n_f = %d; max |hoyer(x) - drawn sparsity| = %.2e", len(arrays["targets"]), n_f, err)
    store.write_h5(out, "fv_targets", arrays, {**attrs, "n_f": n_f})


def run_optimize(
    spec: FVSpec,
    checkpoint: str | Path,
    targets_path: str | Path,
    out: str | Path,
    *,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
    data_path: str | Path | None = None,
) -> None:
    """One realization per target (kind ``fv_realizations``): params, images, responses, objective, grad norm;
    attribute ``piecewise_linear`` (:func:`featflow.fv.optimize.piecewise_linear`) for the stationarity labels;
    for ``maco`` the fixed magnitude spectrum (from ``data_path``) too."""
    fn, shape, _ = load_features(spec, checkpoint, device)
    spectrum = maco_spectrum(spec, data_path)
    targets = store.read_h5(targets_path, "fv_targets")
    x = torch.from_numpy(targets["targets"]).to(fv_dtype(spec))
    real = visualize(
        fn,
        shape,
        x,
        spec.k,
        spec.parametrization,
        adam_steps=spec.adam_steps,
        lbfgs_steps=spec.lbfgs_steps,
        generator=torch_generator(seed + 1),
        device=device,
        decorrelate=spec.decorrelate,
        lr=spec.lr,
        batch_size=spec.batch_size,
        spectrum=spectrum,
    )
    arrays = {
        "params": real.params,
        "images": real.images,
        "responses": real.responses,
        "objective": real.objective,
        "grad_norm": real.grad_norm,
    }
    arrays = {key: value.numpy() for key, value in arrays.items()}
    arrays["images"] = arrays["images"].astype(np.float32)
    arrays.update(targets=targets["targets"], canonical=targets["canonical"])
    if spectrum is not None:
        arrays.update(maco_magnitude=spectrum.magnitude.numpy(), maco_mean=spectrum.mean.numpy())
    store.write_h5(
        out,
        "fv_realizations",
        arrays,
        {
            **attrs,
            "image_shape": list(shape),
            "param_shape": list(param_shape(spec.parametrization, shape)),
            "piecewise_linear": piecewise_linear(load_checkpoint(checkpoint, torch.device("cpu"))[0], spec.aggregation),
        },
    )
