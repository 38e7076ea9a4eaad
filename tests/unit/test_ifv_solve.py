"""Closed-form IFV: exact on constructed Jacobians, and recovers FV objectives on a small network."""

import torch

from featflow.fv.objectives import angular_distance, unit
from featflow.fv.param import make_render
from featflow.ifv.jacobian import jacobian_batched
from featflow.ifv.solve import alpha_decomposition, feasible_basis, predict, z_matrix
from tests.unit._fv_nets import conv_realizations


def _stationary_case(n=5, n_f=6, n_p=40, k=2, seed=0):
    """Random x, y and Dy with x^T Z_k(y) Dy = 0 exactly (the first-order condition of FV)."""
    gen = torch.Generator().manual_seed(seed)
    x = unit(torch.rand(n, n_f, generator=gen, dtype=torch.float64))
    y = torch.rand(n, n_f, generator=gen, dtype=torch.float64)
    w = unit((z_matrix(y, k) @ x[:, :, None]).squeeze(2))
    dy = torch.randn(n, n_f, n_p, generator=gen, dtype=torch.float64)
    dy = dy - w[:, :, None] * (w[:, None, :] @ dy)
    return x, y, dy


def test_z_matrix_inverse_and_first_order_condition():
    y = torch.rand(3, 4, dtype=torch.float64)
    yhat = unit(y)
    zinv = torch.eye(4) + 2 * yhat[:, :, None] * yhat[:, None, :]
    assert torch.allclose(z_matrix(y, 2) @ zinv, torch.eye(4, dtype=torch.float64).expand(3, 4, 4))


def test_prediction_is_exact_at_a_stationary_point():
    x, y, dy = _stationary_case()
    gram = dy @ dy.transpose(1, 2)
    pred = predict(gram, y, 2)
    assert angular_distance(pred.double(), x).max() < 1e-3
    assert torch.all((pred.double() * y).sum(1) > 0)
    alpha = alpha_decomposition(gram, y, x, 2)
    assert abs(alpha[0].item() - 1) < 1e-6 and abs(alpha.sum().item() - 1) < 1e-5


def test_prediction_within_a_critical_space():
    x, y, dy = _stationary_case(seed=1)
    # a critical space that contains Z_k x: its Z^{-1} image contains x, so x is still found
    zx = unit((z_matrix(y[:1], 2) @ x[0, :, None]).squeeze(2))[0]
    other = torch.randn(6, 2, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.cat([zx[:, None], other], dim=1))
    u = feasible_basis(y[:1], 2, basis)
    assert torch.allclose(u.transpose(1, 2) @ u, torch.eye(3, dtype=torch.float64).expand(1, 3, 3))
    pred = predict(dy[:1] @ dy[:1].transpose(1, 2), y[:1], 2, basis)
    assert angular_distance(pred.double(), x[:1]).item() < 1e-3


def test_ifv_recovers_fv_objectives_better_than_the_feature_response():
    fn, x, real, gen = conv_realizations(16, 100)
    jac = jacobian_batched(fn, make_render("rgb", (3, 16, 16)), real.params).double()
    pred = predict(jac @ jac.transpose(1, 2), real.responses, 2)
    ifv, response = angular_distance(pred, x).median(), angular_distance(real.responses, x).median()
    assert ifv < 10.0
    assert response > 2 * ifv
