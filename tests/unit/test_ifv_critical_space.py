"""Algorithm 1: subspace merging, and a known co-kernel (logit shift + dead unit) found on a built network."""

import math

import torch

from featflow.fv.optimize import feature_fn
from featflow.fv.param import init_params
from featflow.ifv.critical_space import complement, critical_spaces, merge, slerp
from featflow.ifv.jacobian import jacobian_batched
from tests.unit._fv_nets import centered_logits_net


def test_slerp_and_merge_of_subspaces():
    e = torch.eye(4, dtype=torch.float64)
    mid = slerp(e[:, :1], e[:, 1:2], torch.tensor([math.pi / 2], dtype=torch.float64), 0.5)
    assert torch.allclose(mid[:, 0], (e[0] + e[1]) / math.sqrt(2))
    same, weight = merge(e[:, :2], 1.0, e[:, [1, 0]], 3.0)
    assert weight == 4.0 and same.shape[1] == 2
    assert torch.allclose(same @ same.T, e[:, :2] @ e[:, :2].T, atol=1e-9)
    # orthogonal spaces share nothing; a 30 degree tilt is kept and interpolated by the weights
    assert merge(e[:, :1], 1.0, e[:, 1:2], 1.0)[0].shape[1] == 0
    tilted = (math.cos(math.pi / 6) * e[0] + math.sin(math.pi / 6) * e[1])[:, None]
    merged, _ = merge(e[:, :1], 1.0, tilted, 2.0)
    angle = math.degrees(math.acos(abs(merged[0, 0].item())))
    assert abs(angle - 20.0) < 1e-6
    assert torch.allclose(complement(e[:, :1]).T @ e[:, 0], torch.zeros(3, dtype=torch.float64))


def test_critical_space_complement_holds_shift_and_dead_unit():
    torch.set_num_threads(1)
    n_classes, dead = 6, 2
    fn = feature_fn(centered_logits_net(n_classes, dead), "fc", "identity", None)
    v, render = init_params("rgb", (3, 8, 8), 12, torch.Generator().manual_seed(0), std=1.0)
    jac = jacobian_batched(fn, render, v).double()
    spaces = critical_spaces(jac @ jac.transpose(1, 2))
    dims = [s.dim for s in spaces]
    # the exact co-kernel is 2-dimensional: already the smallest rho removes it, larger rho remove more
    assert dims[0] == n_classes - 2 and dims == sorted(set(dims), reverse=True)
    known = torch.stack([torch.ones(n_classes) / math.sqrt(n_classes), torch.eye(n_classes)[dead]], dim=1)
    # both known co-kernel directions are orthogonal to C, i.e. lie in its complement
    assert (spaces[0].basis.T @ known.float()).abs().max() < 1e-4
    assert torch.allclose(spaces[0].basis.T @ spaces[0].basis, torch.eye(n_classes - 2), atol=1e-5)
