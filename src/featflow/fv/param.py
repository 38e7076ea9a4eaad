"""Image parametrizations P: v -> image in [0, 1], each returned as (params, render function) (SPEC 2.1).

Written by hand after Lucid's ``pixel_image`` / ``fft_image`` (checked against lucent's ``param/spatial.py``
and ``param/color.py``): ``rgb`` is sigmoid(v), the paper's default; ``fft`` is the orthonormal inverse real FFT
of a learned spectrum divided by 4 (Lucid's constant, which keeps the image from saturating), then sigmoid;
``fft_energy`` scales the spectrum by 1 / max(|f|, 1 / max(H, W)) first, so that low frequencies dominate
(lucent's ``fft_image`` with decay_power 1). Lucid's color decorrelation is optional (off by default).
``ball`` (beyond the paper) bounds the image to an L2 ball, where FV reaches true stationary points.
``maco`` (Fel et al. 2023, MAgnitude Constrained Optimization, the parametrization of the complexity paper's Fig. 3)
fixes the magnitude spectrum and optimizes only the phase; the magnitude is the data set's own (:func:`data_spectrum`:
mean |FFT| over training images; the authors ship ImageNet's), so it needs a :class:`Spectrum`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

PARAMETRIZATIONS = ("rgb", "ball", "fft", "fft_energy", "maco")

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


@dataclass(frozen=True)
class Spectrum:
    """MACO's fixed magnitude: ``magnitude`` (C, H, W // 2 + 1) of the orthonormal rfft2 of mean-free images
    (DC 0), and the per-channel pixel ``mean`` (C,) the image is centred on."""

    magnitude: torch.Tensor
    mean: torch.Tensor


def _mirror_columns(width: int) -> list[int]:
    """rfft2 columns whose bins pair with the mirrored row of the same column (f_x = 0 and, W even, Nyquist)."""
    return [0, width // 2] if width % 2 == 0 else [0]


def _mirror(t: torch.Tensor, width: int, sign: float) -> torch.Tensor:
    """(t + sign * t[rows mirrored]) / 2 on the self-paired columns (see :func:`_mirror_columns`), t as is elsewhere:
    sign +1 makes a magnitude even, -1 a phase odd, so that the spectrum is that of a real image (Hermitian)."""
    height = t.shape[-2]
    rows = (-torch.arange(height)) % height
    cols = _mirror_columns(width)
    out = t.clone()
    out[..., cols] = (t[..., cols] + sign * t[..., rows, :][..., cols]) / 2
    return out


def data_spectrum(images: torch.Tensor) -> Spectrum:
    """MACO's magnitude from a data set's images (n, C, H, W) in [0, 1]: the mean over images of the orthonormal
    rfft2 magnitude of each image minus its per-channel mean (so DC is 0), made exactly even on the self-paired
    columns; and the per-channel mean pixel."""
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"maco: expected training images (n, C, H, W), got shape {tuple(images.shape)}")
    x = images.double()
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    magnitude = torch.fft.rfft2(centred, norm="ortho").abs().mean(0)
    magnitude[:, 0, 0] = 0.0
    return Spectrum(_mirror(magnitude, x.shape[3], 1.0).float(), x.mean(dim=(0, 2, 3)).float())


def maco_spectral(phase: torch.Tensor, spectrum: Spectrum, width: int) -> torch.Tensor:
    """The spectral image irfft2(|A| e^{i phase}) (B, C, H, W) of phases (B, C, H, W // 2 + 1): its magnitude
    spectrum is exactly the fixed one whatever the phase (the phase is made odd where bins pair, so nothing is lost
    to the real part), and gradients reach only the phase."""
    odd = _mirror(phase, width, -1.0)
    magnitude = spectrum.magnitude.to(phase)
    return torch.fft.irfft2(torch.polar(magnitude, odd), s=(phase.shape[-2], width), norm="ortho")


def maco_pixels(spectral: torch.Tensor, spectrum: Spectrum) -> torch.Tensor:
    """Pixels in [0, 1] from the spectral image: sigmoid(logit(m) + s / (m (1 - m))) per channel mean m, the
    sigmoid with slope 1 at the data's mean, so that m + s passes nearly unchanged (the authors standardize and
    take a sigmoid; with the data's own magnitude the scale is the data's already)."""
    m = spectrum.mean.to(spectral).clamp(0.05, 0.95)[:, None, None]
    return torch.sigmoid(torch.logit(m) + spectral / (m * (1 - m)))


def make_render(
    kind: str, shape: tuple[int, int, int], decorrelate: bool = False, spectrum: Spectrum | None = None
) -> Render:
    """The render function of parametrization ``kind`` for images of ``shape`` (C, H, W); ``maco`` needs the
    fixed ``spectrum`` (:func:`data_spectrum`).

    The returned function maps params (B, *param_shape) of any float dtype to images (B, C, H, W) in [0, 1].
    """
    if kind not in PARAMETRIZATIONS:
        raise ValueError(f"fv.parametrization '{kind}': expected one of {PARAMETRIZATIONS}")
    channels, height, width = shape
    if decorrelate and channels != 3:
        raise ValueError(f"fv.decorrelate: color decorrelation needs 3 channels, the model takes {channels}")
    if decorrelate and kind in ("ball", "maco"):
        raise ValueError(f"fv.decorrelate: the {kind} parametrization has no color decorrelation")
    if kind == "maco":
        if spectrum is None or tuple(spectrum.magnitude.shape) != (channels, height, width // 2 + 1):
            raise ValueError(f"parametrization 'maco': needs the data set's magnitude spectrum for images {shape}")
        return lambda v: maco_pixels(maco_spectral(v, spectrum, width), spectrum)
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
    """Shape of one sample's params: (C, H, W) for ``rgb`` and ``ball``, (C, H, W // 2 + 1, 2) for the FFT ones,
    (C, H, W // 2 + 1) phases for ``maco``."""
    channels, height, width = shape
    if kind == "maco":
        return (channels, height, width // 2 + 1)
    return (channels, height, width) if kind in ("rgb", "ball") else (channels, height, width // 2 + 1, 2)


def params_of(
    kind: str, images: torch.Tensor, decorrelate: bool = False, spectrum: Spectrum | None = None
) -> torch.Tensor:
    """Params (B, *param_shape) whose render is ``images`` (B, C, H, W) in [0, 1] (pixels clipped to [0.02, 0.98]
    first, where the sigmoid is finite; the color decorrelation inverted): a start from given images. ``maco``
    keeps only the images' phase (its magnitude is the fixed one). Not for ``ball``."""
    if kind == "ball":
        raise ValueError("config key 'complexity.pictures.start': the ball parametrization cannot start from images")
    logits = torch.logit(images.clamp(0.02, 0.98))
    if decorrelate:
        logits = torch.einsum("dc,bchw->bdhw", torch.linalg.inv(_COLOR_SQRT).to(logits), logits)
    if kind == "rgb":
        return logits
    width = images.shape[-1]
    if kind == "maco":
        if spectrum is None:
            raise ValueError("parametrization 'maco': needs the data set's magnitude spectrum")
        return torch.fft.rfft2(logits, norm="ortho").angle()
    spec = torch.fft.rfft2(logits * FFT_DIVISOR, norm="ortho")
    if kind == "fft_energy":
        spec = spec / frequency_scale(images.shape[-2], width).to(spec.real)
    return torch.view_as_real(spec).contiguous()


def init_params(
    kind: str,
    shape: tuple[int, int, int],
    batch: int,
    generator: torch.Generator,
    decorrelate: bool = False,
    std: float = 0.01,
    spectrum: Spectrum | None = None,
) -> tuple[torch.Tensor, Render]:
    """Small Gaussian params (batch, *param_shape) (Lucid's init, sd 0.01), for ``maco`` phases uniform on
    [-pi, pi) (a phase near 0 everywhere would be one bright dot), and their render function."""
    size = (batch, *param_shape(kind, shape))
    if kind == "maco":
        params = math.pi * (2 * torch.rand(size, generator=generator) - 1)
    else:
        params = std * torch.randn(size, generator=generator)
    return params, make_render(kind, shape, decorrelate, spectrum)
