"""Batched feature visualization: Adam, then L-BFGS with a strong Wolfe line search (SPEC 2.1).

All targets of a batch are optimized at once; the loss is the sum of the per-sample objectives, so each
sample's gradient is its own. No random transforms: inverse FV needs a stationary point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from featflow.fv.objectives import aggregate, objective
from featflow.fv.param import Render, Spectrum, init_params
from featflow.models import forward_to

log = logging.getLogger(__name__)

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
# modules whose output is only piecewise smooth in their input: FV's optima can sit on their kinks
KINKED = (
    torch.nn.ReLU,
    torch.nn.ReLU6,
    torch.nn.LeakyReLU,
    torch.nn.PReLU,
    torch.nn.Hardtanh,
    torch.nn.MaxPool1d,
    torch.nn.MaxPool2d,
    torch.nn.MaxPool3d,
    torch.nn.AdaptiveMaxPool2d,
)


def piecewise_linear(model: torch.nn.Module, aggregation: str) -> bool:
    """Whether FV's objective on ``model`` is only piecewise smooth: a ReLU-type activation or max pooling
    anywhere in it (modules; the layers after the FV layer are counted too), or the max-pool aggregation. There
    FV's optima sit on kinks where the gradient does not vanish, so the stationarity test cannot pass them."""
    return aggregation == "maxpool_mean" or any(isinstance(m, KINKED) for m in model.modules())


def feature_fn(model: torch.nn.Module, layer: str, aggregation: str, n_f: int | None) -> FeatureFn:
    """images (B, C, H, W) in [0, 1] -> feature response y (B, n_f) of ``layer`` under ``aggregation``.

    The model is put in eval mode (batch norm must not mix samples) and its weights frozen.
    """
    model.eval().requires_grad_(False)

    def fn(images: torch.Tensor) -> torch.Tensor:
        return aggregate(forward_to(model, images, layer), aggregation, n_f)

    return fn


@dataclass
class Realizations:
    """Result of :func:`visualize`; tensors on the CPU.

    params (n, *param_shape), images (n, C, H, W), responses y (n, n_f), objective S_x(y) (n,),
    grad_norm ||d f_x / d v|| at the end (n,).
    """

    params: torch.Tensor
    images: torch.Tensor
    responses: torch.Tensor
    objective: torch.Tensor
    grad_norm: torch.Tensor


def _objective_and_grad(
    fn: FeatureFn, render: Render, v: torch.Tensor, x: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample objective (B,), response (B, n_f) and per-sample gradient norm (B,) at params ``v``."""
    v = v.detach().requires_grad_(True)
    y = fn(render(v))
    value = objective(x, y, k)
    (grad,) = torch.autograd.grad(value.sum(), v)
    return value.detach(), y.detach(), grad.flatten(1).norm(dim=1)


def optimize_batch(
    fn: FeatureFn,
    render: Render,
    v: torch.Tensor,
    x: torch.Tensor,
    k: int,
    adam_steps: int,
    lbfgs_steps: int,
    lr: float = 0.05,
) -> torch.Tensor:
    """Maximize sum_i S_{x_i}(Agg(N(P(v_i)))) over v (B, *param_shape); returns the optimized params."""
    v = v.detach().clone().requires_grad_(True)
    adam = torch.optim.Adam([v], lr=lr)
    for _ in tqdm(range(adam_steps), desc="fv adam", mininterval=5, leave=False):
        adam.zero_grad(set_to_none=True)
        loss = -objective(x, fn(render(v)), k).sum()
        loss.backward()
        adam.step()
    if lbfgs_steps > 0:
        lbfgs = torch.optim.LBFGS(
            [v],
            lr=1.0,
            max_iter=lbfgs_steps,
            max_eval=2 * lbfgs_steps,
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
            history_size=50,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            lbfgs.zero_grad(set_to_none=True)
            loss = -objective(x, fn(render(v)), k).sum()
            loss.backward()
            return loss

        lbfgs.step(closure)
    return v.detach()


def visualize(
    fn: FeatureFn,
    image_shape: tuple[int, int, int],
    targets: torch.Tensor,
    k: int,
    parametrization: str,
    *,
    adam_steps: int,
    lbfgs_steps: int,
    generator: torch.Generator,
    device: torch.device,
    decorrelate: bool = False,
    lr: float = 0.05,
    batch_size: int = 256,
    spectrum: Spectrum | None = None,
) -> Realizations:
    """One realization per target (n, n_f): FV in batches of ``batch_size`` targets (``spectrum``: MACO's)."""
    v0, render = init_params(parametrization, image_shape, targets.shape[0], generator, decorrelate, spectrum=spectrum)
    out: dict[str, list[torch.Tensor]] = {
        key: [] for key in ("params", "images", "responses", "objective", "grad_norm")
    }
    for start in range(0, targets.shape[0], batch_size):
        x = targets[start : start + batch_size].to(device)
        v = optimize_batch(
            fn,
            render,
            v0[start : start + batch_size].to(device, x.dtype),
            x,
            k,
            adam_steps=adam_steps,
            lbfgs_steps=lbfgs_steps,
            lr=lr,
        )
        value, y, grad_norm = _objective_and_grad(fn, render, v, x, k)
        with torch.no_grad():
            images = render(v)
        for key, tensor in zip(out, (v, images, y, value, grad_norm), strict=True):
            out[key].append(tensor.cpu())
        log.info(
            "fv batch %d-%d: median objective %.4g, median grad norm %.3g",
            start,
            start + len(x),
            value.median().item(),
            grad_norm.median().item(),
        )
    return Realizations(**{key: torch.cat(parts) for key, parts in out.items()})
