"""Image parametrizations P: v -> image in [0, 1], each returned as (params, render function) (SPEC 2.1).

Written by hand after Lucid's ``pixel_image`` / ``fft_image`` (checked against lucent's ``param/spatial.py``
and ``param/color.py``): ``rgb`` is sigmoid(v), the paper's default; ``fft`` is the orthonormal inverse real FFT
of a learned spectrum divided by 4 (Lucid's constant, which keeps the image from saturating), then sigmoid;
``fft_energy`` scales the spectrum by 1 / max(|f|, 1 / max(H, W)) first, so that low frequencies dominate
(lucent's ``fft_image`` with decay_power 1). Lucid's color decorrelation is optional (off by default).
``ball`` (beyond the paper) bounds the image to an L2 ball, where FV reaches true stationary points.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PARAMETRIZATIONS = ("rgb", "ball", "fft", "fft_energy")

# Lucid's fft_image divides the inverse FFT by this constant before the sigmoid.
FFT_DIVISOR = 4.0

# Lucid's square root of the ImageNet color covariance, normalized by its largest column norm.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()

Render = Callable[[torch.Tensor], torch.Tensor]


def frequency_scale(height: int, width: int) -> torch.Tensor:
    """1 / max(|f|, 1 / max(H, W)) on the rfft2 grid, shape (H, W // 2 + 1)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    freq = torch.sqrt(fx**2 + fy**2)
    return 1.0 / torch.clamp(freq, min=1.0 / max(height, width))


def ball(v: torch.Tensor) -> torch.Tensor:
    """0.5 + 0.5 sin(|v|) v / |v| per sample: onto the L2 ball of radius 0.5 around mid-gray, inside [0, 1].

    Beyond the paper: S_x is homogeneous in y, so over the pixel box of ``rgb`` FV runs to saturated faces
    where few pixels are free, Dy loses rank and no stationary point is reached at finite v. On the ball the
    maxima found lie on its sphere |v| = pi / 2, where sin' = 0: true stationary points at finite v with every
    pixel free (Dy of full rank but for the co-kernel that IFV inverts). Used by the logit experiments.
    """
    norm = v.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (v.dim() - 1)))
    return 0.5 + 0.5 * torch.sin(norm) * v / norm


def make_render(kind: str, shape: tuple[int, int, int], decorrelate: bool = False) -> Render:
    """The render function of parametrization ``kind`` for images of ``shape`` (C, H, W).

    The returned function maps params (B, *param_shape) of any float dtype to images (B, C, H, W) in [0, 1].
    """
    if kind not in PARAMETRIZATIONS:
        raise ValueError(f"fv.parametrization '{kind}': expected one of {PARAMETRIZATIONS}")
    channels, height, width = shape
    if decorrelate and channels != 3:
        raise ValueError(f"fv.decorrelate: color decorrelation needs 3 channels, the model takes {channels}")
    if decorrelate and kind == "ball":
        raise ValueError("fv.decorrelate: the ball parametrization has no color decorrelation")
    scale = frequency_scale(height, width) if kind == "fft_energy" else None

    def render(v: torch.Tensor) -> torch.Tensor:
        img = v
        if kind == "ball":
            return ball(v)
        if kind != "rgb":
            spectrum = torch.view_as_complex(v.contiguous())
            if scale is not None:
                spectrum = spectrum * scale.to(v)
            img = torch.fft.irfft2(spectrum, s=(height, width), norm="ortho") / FFT_DIVISOR
        if decorrelate:  # lucent's to_valid_rgb: decorrelate whatever image the parametrization gives
            img = torch.einsum("dc,bchw->bdhw", _COLOR_SQRT.to(img), img)
        return torch.sigmoid(img)

    return render


def param_shape(kind: str, shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Shape of one sample's params: (C, H, W) for ``rgb`` and ``ball``, (C, H, W // 2 + 1, 2) for the FFT ones."""
    channels, height, width = shape
    return (channels, height, width) if kind in ("rgb", "ball") else (channels, height, width // 2 + 1, 2)


def init_params(
    kind: str,
    shape: tuple[int, int, int],
    batch: int,
    generator: torch.Generator,
    decorrelate: bool = False,
    std: float = 0.01,
) -> tuple[torch.Tensor, Render]:
    """Small Gaussian params (batch, *param_shape) (Lucid's init, sd 0.01) and their render function."""
    params = std * torch.randn((batch, *param_shape(kind, shape)), generator=generator)
    return params, make_render(kind, shape, decorrelate)
