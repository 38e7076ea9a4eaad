"""Closed-form IFV: exact on constructed Jacobians, scored within the critical space as the paper does, the
stationarity checks, and recovery of FV objectives on a small network."""

import torch

from featflow.fv.objectives import angular_distance, unit
from featflow.fv.optimize import visualize
from featflow.fv.param import make_render
from featflow.fv.spec import StationaritySpec
from featflow.ifv.critical_space import complement
from featflow.ifv.jacobian import jacobian_batched
from featflow.ifv.run import score_spaces
from featflow.ifv.solve import (
    alpha_decomposition,
    feasible_basis,
    fraction_in_space,
    predict,
    project_target,
    stationarity,
    z_matrix,
)
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


def _critical_case(n=6, n_f=6, n_p=30, k=2, seed=3):
    """Jacobians whose co-kernel holds (1, ..., 1) (a trivial solution) and Z_k x~, x~ the projected target for
    the critical space C = (1, ..., 1)^perp: IFV within C recovers x~ exactly, the raw target x is not x~."""
    gen = torch.Generator().manual_seed(seed)
    x = unit(torch.rand(n, n_f, generator=gen, dtype=torch.float64))
    y = torch.rand(n, n_f, generator=gen, dtype=torch.float64)
    ones = torch.ones(n_f, dtype=torch.float64) / n_f**0.5
    critical = complement(ones[:, None])
    xt = project_target(x, y, k, critical)
    kernel = torch.stack([ones.expand(n, n_f), (z_matrix(y, k) @ xt[:, :, None]).squeeze(2)], dim=2)
    q, _ = torch.linalg.qr(kernel)
    dy = torch.randn(n, n_f, n_p, generator=gen, dtype=torch.float64)
    dy = dy - q @ (q.transpose(1, 2) @ dy)
    return x, y, dy, critical, xt


def test_projected_target_is_what_ifv_recovers_within_the_critical_space():
    x, y, dy, critical, xt = _critical_case()
    gram = dy @ dy.transpose(1, 2)
    pred = predict(gram, y, 2, critical).double()
    assert angular_distance(pred, xt).max() < 1e-4  # the paper's score: exact
    assert angular_distance(pred, x).min() > 1.0  # the raw angle is not
    # x~ lies in Z^-1 C and Z x~ is the C-part of Z x (the paper's definition, Sec. 2.2)
    zx, zxt = (z_matrix(y, 2) @ x[:, :, None]).squeeze(2), (z_matrix(y, 2) @ xt[:, :, None]).squeeze(2)
    assert torch.allclose(unit(zx @ critical @ critical.T), unit(zxt), atol=1e-10)
    assert torch.allclose(project_target(x, y, 2, None), x)
    assert torch.all(fraction_in_space(x, y, 2, critical) < 1) and torch.all(fraction_in_space(x, y, 2, None) == 1)


def test_spaces_are_chosen_by_the_projected_angle_against_chance_not_by_size():
    x, y, dy, critical, xt = _critical_case()
    gram = dy @ dy.transpose(1, 2)
    line = critical[:, :1]  # a 1-dim space: every prediction is trivially exact there
    chance = unit(torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    preds, angles, chances, best = score_spaces(gram, y, x, 2, [None, critical, line], chance)
    assert best == 1 and angles[1].max() < 1e-4 and angles[2].max() < 1e-4
    assert angles[0].median() > 1.0 and chances[1].median() > 10.0


def test_stationarity_is_scale_free_and_matches_the_fv_gradient():
    fn, x, real, _ = conv_realizations(6, 60)
    render = make_render("rgb", (3, 16, 16))
    jac = jacobian_batched(fn, render, real.params).double()
    gram = jac @ jac.transpose(1, 2)
    check = stationarity(gram, real.responses, x, 2)
    # grad_rel = |grad_v f_x| / ((k + 1) (x^T yhat)^k |Z_k x| |Dy|_2), the gradient FV itself followed
    yhat = unit(real.responses.double())
    scale = (
        3
        * ((x.double() * yhat).sum(1)) ** 2
        * (z_matrix(real.responses.double(), 2) @ x.double()[:, :, None]).norm(dim=(1, 2))
    )
    expected = real.grad_norm.double() / (scale * torch.linalg.matrix_norm(jac, ord=2))
    assert torch.allclose(check["grad_rel"].double(), expected, rtol=1e-3)
    assert torch.all(check["residual_ratio"] >= 1 - 1e-4)
    scaled = stationarity(25 * gram, 5 * real.responses, x, 2)
    for key in check:
        assert torch.allclose(scaled[key], check[key], rtol=1e-4)
    # at the start of FV (no steps) realizations are far from stationary
    start = visualize(fn, (3, 16, 16), x, 2, "rgb", 0, 0, torch.Generator().manual_seed(0), torch.device("cpu"))
    jac0 = jacobian_batched(fn, render, start.params).double()
    early = stationarity(jac0 @ jac0.transpose(1, 2), start.responses, x, 2)
    # the flag's default limits (fv.stationarity): none stationary at the start, nearly all after FV
    limits = StationaritySpec()
    assert torch.all(early["residual_ratio"] > limits.max_residual_ratio)
    assert torch.all(early["grad_rel"] > limits.max_grad_rel)
    assert (check["residual_ratio"] <= limits.max_residual_ratio).sum() >= 5
