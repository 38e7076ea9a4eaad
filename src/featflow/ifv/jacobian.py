"""Batched Jacobians Dy = d Agg(N(P(v))) / dv at the realizations (SPEC 2.2).

Every sample's response depends on its own params only (eval mode), so the VJP of the batch with the
cotangent e_j on every sample gives row j of every sample's Jacobian at once; ``is_grads_batched`` vmaps
that over a chunk of features, so there is no Python loop over n_f, only over chunks that fit memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from featflow.fv.optimize import FeatureFn
from featflow.fv.param import Render


def jacobian_batched(fn: FeatureFn, render: Render, v: torch.Tensor, feature_chunk: int | None = None) -> torch.Tensor:
    """Dy for a batch of params ``v`` (B, *param_shape) -> (B, n_f, n_p), n_p = prod(param_shape).

    ``feature_chunk`` bounds how many cotangents are vmapped at once (memory ~ chunk x batch x n_p).
    """
    v = v.detach().requires_grad_(True)
    y = fn(render(v))
    batch, n_f = y.shape
    chunk = n_f if feature_chunk is None else max(1, feature_chunk)
    eye = torch.eye(n_f, device=y.device, dtype=y.dtype)
    rows = []
    for start in range(0, n_f, chunk):
        cot = eye[start : start + chunk, None, :].expand(-1, batch, -1)
        (grad,) = torch.autograd.grad(y, v, cot, retain_graph=True, is_grads_batched=True)
        rows.append(grad.flatten(2).transpose(0, 1))
    return torch.cat(rows, dim=1)


def jacobian_loop(fn: FeatureFn, render: Render, v: torch.Tensor) -> torch.Tensor:
    """Reference: the same Jacobian from n_f separate backward passes (tests and benchmarks only)."""
    v = v.detach().requires_grad_(True)
    y = fn(render(v))
    rows = [torch.autograd.grad(y[:, j].sum(), v, retain_graph=True)[0].flatten(1) for j in range(y.shape[1])]
    return torch.stack(rows, dim=1)


def iter_jacobians(
    fn: FeatureFn,
    render: Render,
    params: torch.Tensor,
    device: torch.device,
    sample_chunk: int,
    feature_chunk: int | None = None,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (start, Dy (b, n_f, n_p), response y (b, n_f)) for chunks of ``sample_chunk`` realizations."""
    for start in range(0, params.shape[0], sample_chunk):
        v = params[start : start + sample_chunk].to(device)
        with torch.no_grad():
            y = fn(render(v))
        yield start, jacobian_batched(fn, render, v, feature_chunk), y
