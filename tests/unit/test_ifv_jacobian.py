"""Batched Jacobians equal the per-feature backward loop."""

import pytest
import torch

from featflow.fv.optimize import feature_fn
from featflow.fv.param import init_params
from featflow.ifv.jacobian import iter_jacobians, jacobian_batched, jacobian_loop
from tests.unit._fv_nets import conv_net


@pytest.mark.parametrize("kind", ["rgb", "fft_energy"])
def test_batched_jacobian_equals_backward_loop(kind):
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(n_f=6), "3", "maxpool_mean", None)
    v, render = init_params(kind, (3, 12, 12), 3, torch.Generator().manual_seed(0), std=1.0)
    loop = jacobian_loop(fn, render, v)
    assert loop.shape == (3, 6, v[0].numel())
    assert torch.allclose(jacobian_batched(fn, render, v), loop, atol=1e-6)
    assert torch.allclose(jacobian_batched(fn, render, v, feature_chunk=4), loop, atol=1e-6)


def test_jacobian_rows_are_per_sample_and_match_finite_differences():
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(n_f=4).double(), "3", "mean", None)
    v, render = init_params("rgb", (3, 8, 8), 2, torch.Generator().manual_seed(1), std=1.0)
    v = v.double()
    jac = jacobian_batched(fn, render, v)
    direction = torch.randn_like(v)
    eps = 1e-6
    fd = (fn(render(v + eps * direction)) - fn(render(v - eps * direction))) / (2 * eps)
    assert torch.allclose(torch.einsum("bfp,bp->bf", jac, direction.flatten(1)), fd, atol=1e-6)


def test_iter_jacobians_chunks_samples():
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(n_f=4), "3", "maxpool_mean", None)
    v, render = init_params("rgb", (3, 8, 8), 5, torch.Generator().manual_seed(2), std=1.0)
    parts = list(iter_jacobians(fn, render, v, torch.device("cpu"), sample_chunk=2, feature_chunk=3))
    assert [start for start, _, _ in parts] == [0, 2, 4]
    assert torch.allclose(torch.cat([jac for _, jac, _ in parts]), jacobian_loop(fn, render, v), atol=1e-6)
    assert torch.allclose(torch.cat([y for _, _, y in parts]), fn(render(v)).detach())
