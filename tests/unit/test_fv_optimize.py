"""FV: parametrizations render to [0, 1] (as Lucid's), aggregations, the objective increases under optimization,
and the ball parametrization reaches the stationary points IFV needs."""

import numpy as np
import pytest
import torch

from featflow.config import ModelSpec
from featflow.fv.objectives import aggregate, angular_distance, objective
from featflow.fv.optimize import feature_fn, optimize_batch, visualize
from featflow.fv.param import frequency_scale, init_params, make_render
from featflow.fv.targets import make_targets
from featflow.ifv.jacobian import jacobian_batched
from featflow.ifv.solve import predict, stationarity
from featflow.models import build_model
from tests.unit._fv_nets import conv_net


@pytest.mark.parametrize("kind", ["rgb", "fft", "fft_energy"])
@pytest.mark.parametrize("decorrelate", [False, True])
def test_render_shapes_and_range(kind, decorrelate):
    params, render = init_params(kind, (3, 12, 10), 4, torch.Generator().manual_seed(0), decorrelate)
    img = render(params)
    assert img.shape == (4, 3, 12, 10)
    assert img.min() >= 0 and img.max() <= 1


def test_fft_render_inverts_the_orthonormal_spectrum_divided_by_lucids_constant():
    img = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    spec = torch.view_as_real(torch.fft.rfft2(img, norm="ortho"))
    assert torch.allclose(make_render("fft", (3, 8, 8))(spec), torch.sigmoid(img / 4))
    scale = frequency_scale(8, 8)
    assert scale[0, 0] == 8 and scale.max() == 8 and scale.min() > 1


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 12, 10)])
def test_fft_energy_equals_lucents_fft_image(shape):
    """lucent's fft_image (decay_power 1): sigmoid(irfft2(spectrum / max(|f|, 1 / max(H, W)), ortho) / 4)."""
    _, h, w = shape
    params = torch.randn(2, 3, h, w // 2 + 1, 2, dtype=torch.float64)
    freqs = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[: w // 2 + 1][None, :] ** 2)
    scale = torch.from_numpy(1.0 / np.maximum(freqs, 1.0 / max(h, w)))
    image = torch.fft.irfftn(scale * torch.view_as_complex(params), s=(h, w), norm="ortho") / 4.0
    assert torch.allclose(make_render("fft_energy", shape)(params), torch.sigmoid(image))


@pytest.mark.parametrize("kind", ["rgb", "fft", "fft_energy"])
def test_color_decorrelation_works_in_float64_and_matches_lucent(kind):
    params, render = init_params(kind, (3, 8, 8), 2, torch.Generator().manual_seed(0), decorrelate=True)
    params = params.double() * 100
    out = render(params)
    assert out.dtype == torch.float64
    sqrt = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    sqrt = sqrt / np.linalg.norm(sqrt, axis=0).max()
    plain = torch.logit(make_render(kind, (3, 8, 8))(params))  # the image before the sigmoid
    expected = torch.sigmoid(torch.from_numpy(np.einsum("bchw,dc->bdhw", plain.numpy(), sqrt)))
    assert torch.allclose(out, expected, atol=1e-9)


def test_aggregations_and_objective():
    act = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    assert torch.allclose(aggregate(act, "mean"), act.mean((2, 3)))
    assert torch.equal(aggregate(act, "center"), act[:, :, 2, 2])
    # 3x3 max pool stride 1 of an increasing ramp keeps the bottom-right 3x3 block
    assert torch.allclose(aggregate(act, "maxpool_mean"), act[:, :, 2:, 2:].mean((2, 3)))
    assert aggregate(act, "mean", n_f=2).shape == (2, 2)
    with pytest.raises(ValueError, match="identity"):
        aggregate(act, "identity")
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert torch.allclose(objective(x, y, 2), torch.tensor([3.0 * 0.6**2]))
    assert torch.allclose(angular_distance(x, -x), torch.zeros(1))


def test_objective_increases_and_each_sample_is_independent():
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(), "3", "maxpool_mean", None)
    x = make_targets(3, 8, False, torch.Generator().manual_seed(0))["targets"]
    v0, render = init_params("rgb", (3, 16, 16), 3, torch.Generator().manual_seed(1))
    before = objective(x, fn(render(v0)), 2)
    v = optimize_batch(fn, render, v0, x, 2, adam_steps=30, lbfgs_steps=20)
    after = objective(x, fn(render(v)), 2)
    assert torch.all(after > before + 0.1)
    # optimizing sample 0 alone gives the same params: the batch loss does not couple samples under Adam
    alone = optimize_batch(fn, render, v0[:1], x[:1], 2, adam_steps=30, lbfgs_steps=0)
    batched = optimize_batch(fn, render, v0, x, 2, adam_steps=30, lbfgs_steps=0)
    assert torch.allclose(alone, batched[:1], atol=1e-5)


def test_visualize_records_a_small_final_gradient():
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(), "3", "maxpool_mean", None)
    x = make_targets(4, 8, False, torch.Generator().manual_seed(0))["targets"]
    short = visualize(
        fn,
        (3, 16, 16),
        x,
        2,
        "rgb",
        adam_steps=5,
        lbfgs_steps=0,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    long = visualize(
        fn,
        (3, 16, 16),
        x,
        2,
        "rgb",
        adam_steps=30,
        lbfgs_steps=30,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    assert long.images.shape == (4, 3, 16, 16) and long.responses.shape == (4, 8)
    assert torch.all(long.objective > short.objective)
    # the recorded gradient norm is that of each sample's own objective at its final params
    v = long.params.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(x[1:2], fn(torch.sigmoid(v[1:2])), 2).sum(), v)
    assert torch.isclose(grad.norm(), long.grad_norm[1], rtol=1e-4)
    assert long.grad_norm.median() < short.grad_norm.median()


def _smooth_logits(seed: int = 0):
    """Logits of an untrained ``smallcnn-smooth`` (softplus, average pooling) on 1 x 12 x 12 images, float64."""
    torch.manual_seed(seed)
    model = build_model(ModelSpec(arch="smallcnn-smooth", dataset="none", width=4), (1, 12, 12), 6).double()
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.MaxPool2d)) for m in model.modules())
    return feature_fn(model, "fc", "identity", None)


def test_ball_parametrization_reaches_stationary_points_that_ifv_inverts():
    """On logits FV over the pixel box (rgb) runs to saturation without a stationary point; on the ball it
    reaches one (float64 L-BFGS), and the closed-form IFV recovers the target there."""
    torch.set_num_threads(1)
    fn = _smooth_logits()
    x = make_targets(4, 6, False, torch.Generator().manual_seed(0))["targets"].double()
    found = {}
    for kind in ("ball", "rgb"):
        real = visualize(
            fn,
            (1, 12, 12),
            x,
            2,
            kind,
            adam_steps=50,
            lbfgs_steps=300,
            generator=torch.Generator().manual_seed(1),
            device=torch.device("cpu"),
        )
        assert real.params.dtype == torch.float64
        jac = jacobian_batched(fn, make_render(kind, (1, 12, 12)), real.params)
        gram = jac @ jac.transpose(1, 2)
        found[kind] = (stationarity(gram, real.responses, x, 2), angular_distance(predict(gram, real.responses, 2), x))
    check, angle = found["ball"]
    assert check["grad_rel"].max() < 1e-3 and angle.max() < 1.0  # 1e-3: the default fv.stationarity limit
    assert found["rgb"][0]["grad_rel"].max() > 100 * check["grad_rel"].max()  # some run to the box faces
    images = make_render("ball", (1, 12, 12))(real.params)
    assert images.min() >= 0 and images.max() <= 1
