"""Re-optimization of realizations under other objectives, compared by SSIM (SPEC 2.5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from featflow.fv.optimize import FeatureFn, optimize_batch
from featflow.fv.param import Render


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalized 2-D Gaussian window (size, size), float64."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) per image pair, a, b (B, C, H, W) -> (B,).

    Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=0)``: local statistics over valid window
    positions only (skimage filters, then crops the border), averaged over positions and channels.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim: need two (B, C, H, W) tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    if min(a.shape[-2:]) < size:
        raise ValueError(f"ssim: images {tuple(a.shape[-2:])} are smaller than the {size}x{size} window")
    channels = a.shape[1]
    win = gaussian_window(size, sigma).to(a.device)[None, None].expand(channels, 1, size, size)
    a, b = a.double(), b.double()

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, groups=channels)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3)).float()


def random_objectives(n: int, n_f: int, generator: torch.Generator) -> torch.Tensor:
    """Random non-negative unit vectors (n, n_f): |Gaussian| normalized (uniform on the positive orthant)."""
    x = torch.randn(n, n_f, generator=generator).abs()
    return x / x.norm(dim=1, keepdim=True)


def reoptimize(
    fn: FeatureFn,
    render: Render,
    params: torch.Tensor,
    objectives: dict[str, torch.Tensor],
    k: int,
    steps: int,
    *,
    device: torch.device,
    lr: float = 0.05,
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Re-optimize each realization (n, *param_shape) with Adam under each objective (n, n_f).

    All objectives run as one batch (in chunks of ``batch_size``). Returns SSIM (n,) per objective name
    between the image before and after.
    """
    names = list(objectives)
    n = params.shape[0]
    x_all = torch.cat([objectives[name] for name in names])
    v_all = params.repeat(len(names), *([1] * (params.dim() - 1)))
    scores = []
    for start in range(0, x_all.shape[0], batch_size):
        v0 = v_all[start : start + batch_size].to(device)
        v1 = optimize_batch(
            fn, render, v0, x_all[start : start + batch_size].to(device), k, adam_steps=steps, lbfgs_steps=0, lr=lr
        )
        with torch.no_grad():
            scores.append(ssim(render(v0), render(v1)).cpu())
    score = torch.cat(scores)
    return {name: score[i * n : (i + 1) * n] for i, name in enumerate(names)}


def unstable(ssim_target: torch.Tensor, threshold: float = 0.7) -> torch.Tensor:
    """A realization is unstable when re-optimizing under its own target moves it to SSIM < threshold."""
    if not 0 < threshold <= 1 or math.isnan(threshold):
        raise ValueError(f"ifv.reoptimize.unstable_ssim = {threshold}: expected a value in (0, 1]")
    return ssim_target < threshold
