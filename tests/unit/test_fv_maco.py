"""MACO (Fel et al. 2023; featflow.fv.param): the phase-only parametrization keeps the data set's magnitude
spectrum exactly, whatever the phase and after optimization; gradients reach only the phase; a start from images
keeps their phase."""

from __future__ import annotations

import pytest
import torch

from featflow.fv.param import data_spectrum, init_params, maco_pixels, maco_spectral, make_render, params_of


def _images(shape: tuple[int, int, int], n: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    blurred = torch.nn.functional.avg_pool2d(torch.rand((n, *shape), generator=gen), 3, 1, 1)  # natural-ish 1/f
    return blurred


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 7, 9), (3, 12, 10)])
def test_the_magnitude_spectrum_is_the_fixed_one_before_and_after_optimization(shape):
    images = _images(shape)
    spectrum = data_spectrum(images)
    x = images.double() - images.double().mean(dim=(2, 3), keepdim=True)
    expected = torch.fft.rfft2(x, norm="ortho").abs().mean(0)
    expected[:, 0, 0] = 0
    torch.testing.assert_close(spectrum.magnitude.double(), expected, atol=1e-6, rtol=1e-5)
    phase, render = init_params("maco", shape, 3, torch.Generator().manual_seed(1), spectrum=spectrum)
    assert phase.shape == (3, shape[0], shape[1], shape[2] // 2 + 1)
    phase = phase.double().requires_grad_(True)
    opt = torch.optim.Adam([phase], lr=0.3)
    target = torch.rand(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for step in range(21):
        image = render(phase)
        assert image.min() >= 0 and image.max() <= 1
        # the spectral image (the pixels' sigmoid undone) has exactly the fixed magnitude at every step
        m = spectrum.mean.double().clamp(0.05, 0.95)[:, None, None]
        spectral = (torch.logit(image) - torch.logit(m)) * m * (1 - m)
        magnitude = torch.fft.rfft2(spectral.detach(), norm="ortho").abs()
        torch.testing.assert_close(magnitude, spectrum.magnitude.double().expand_as(magnitude), atol=1e-9, rtol=0)
        loss = ((image - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            first = float(loss.detach())
        opt.step()
    assert float(loss.detach()) < first  # the phase alone moves the image toward the target


def test_gradients_reach_only_the_phase():
    shape = (3, 8, 8)
    spectrum = data_spectrum(_images(shape))
    magnitude = spectrum.magnitude.clone().requires_grad_(
        True
    )  # if the render used it as a variable, it would get a gradient
    spectrum = type(spectrum)(magnitude, spectrum.mean)
    phase = init_params("maco", shape, 2, torch.Generator().manual_seed(0), spectrum=spectrum)[0].requires_grad_(True)
    image = make_render("maco", shape, spectrum=type(spectrum)(spectrum.magnitude.detach(), spectrum.mean))(phase)
    image.square().sum().backward()
    assert phase.grad is not None and phase.grad.abs().sum() > 0 and magnitude.grad is None
    assert not spectrum.magnitude.detach().requires_grad
    # through the spectral image: a gradient step on the phase leaves the magnitude unchanged
    stepped = (phase - 0.5 * phase.grad).detach()
    after = torch.fft.rfft2(maco_spectral(stepped, spectrum, 8).detach(), norm="ortho").abs()
    torch.testing.assert_close(after, magnitude.detach().expand_as(after), atol=1e-5, rtol=0)


def test_a_start_from_images_keeps_their_phase():
    """Every bin keeps the images' phase but the self-paired real ones (f = -f: DC and the Nyquist rows/columns),
    whose phase the odd projection sets to 0."""
    shape = (1, 8, 8)
    images = _images(shape, 4)
    spectrum = data_spectrum(images)
    phase = params_of("maco", images[:2], spectrum=spectrum)
    got = torch.fft.rfft2(maco_spectral(phase, spectrum, 8), norm="ortho").angle()
    want = torch.fft.rfft2(torch.logit(images[:2].clamp(0.02, 0.98)), norm="ortho").angle()
    real = torch.zeros((8, 5), dtype=torch.bool)
    real[[0, 4, 0, 4], [0, 0, 4, 4]] = True
    torch.testing.assert_close(torch.cos(got - want)[:, :, ~real], torch.ones_like(got[:, :, ~real]), atol=1e-4, rtol=0)
    assert maco_pixels(maco_spectral(phase, spectrum, 8), spectrum).shape == images[:2].shape


def test_maco_needs_the_spectrum_of_the_models_images():
    with pytest.raises(ValueError, match="magnitude spectrum"):
        make_render("maco", (3, 8, 8))
    with pytest.raises(ValueError, match="decorrelat"):
        make_render("maco", (3, 8, 8), decorrelate=True, spectrum=data_spectrum(_images((3, 8, 8))))


@pytest.mark.parametrize("kind", ["rgb", "fft", "fft_energy"])
@pytest.mark.parametrize("decorrelate", [False, True])
def test_a_start_from_images_renders_those_images(kind, decorrelate):
    """start: top begins each picture at its top image: the params' render is the image (pixels kept off 0 and 1)."""
    images = 0.05 + 0.9 * _images((3, 8, 10), 2)
    render = make_render(kind, (3, 8, 10), decorrelate)
    torch.testing.assert_close(render(params_of(kind, images, decorrelate)), images, atol=1e-5, rtol=0)


def test_fv_through_maco_keeps_the_magnitude_and_its_stored_spectrum_renders_the_realizations():
    """FV (issue 27.3): the maco parametrization in the FV branch raises the objective, every realization keeps the
    fixed magnitude, and the spectrum stored beside the params (as fv_optimize writes it) renders the same images
    for the later rules (Jacobians, IFV, re-optimization), which read no data set."""
    from featflow.fv.optimize import feature_fn, visualize
    from featflow.fv.run import realization_render
    from featflow.fv.spec import FVSpec
    from featflow.fv.targets import make_targets
    from tests.unit._fv_nets import conv_net

    torch.set_num_threads(1)
    shape = (3, 16, 16)
    spectrum = data_spectrum(_images(shape, n=32))
    fn = feature_fn(conv_net(n_f=8), "3", "maxpool_mean", None)
    x = make_targets(3, 8, False, torch.Generator().manual_seed(0))["targets"]

    def run(steps: int):
        gen = torch.Generator().manual_seed(0)
        return visualize(
            fn,
            shape,
            x,
            2,
            "maco",
            adam_steps=steps,
            lbfgs_steps=0,
            generator=gen,
            device=torch.device("cpu"),
            spectrum=spectrum,
        )

    short, long = run(2), run(40)
    assert long.params.shape == (3, *shape[:2], shape[2] // 2 + 1)
    assert torch.all(long.objective > short.objective)
    m = spectrum.mean.clamp(0.05, 0.95)[:, None, None]
    spectral = (torch.logit(long.images.double()) - torch.logit(m.double())) * m * (1 - m)
    magnitude = torch.fft.rfft2(spectral, norm="ortho").abs()
    torch.testing.assert_close(magnitude, spectrum.magnitude.double().expand_as(magnitude), atol=1e-4, rtol=1e-4)
    spec = FVSpec(model="m", layer="3", parametrization="maco")
    stored = {"maco_magnitude": spectrum.magnitude.numpy(), "maco_mean": spectrum.mean.numpy()}
    torch.testing.assert_close(realization_render(spec, shape, stored)(long.params), long.images)
    with pytest.raises(ValueError, match="rerun the rule fv_optimize"):
        realization_render(spec, shape, {})
