"""Hoyer-sparse targets: exact sparsity, non-negative unit vectors, canonical vectors appended."""

import math

import pytest
import torch

from featflow.fv.targets import hoyer, make_targets, sample_targets, sparseness_projection


def test_projection_hits_the_requested_sparsity_exactly():
    gen = torch.Generator().manual_seed(0)
    x, s = sample_targets(200, 32, gen)
    assert torch.all(x >= 0)
    assert torch.allclose(x.norm(dim=1), torch.ones(200), atol=1e-5)
    assert torch.allclose(hoyer(x), s, atol=1e-4)


def test_projection_extremes_and_fixed_point():
    n = 10
    x = torch.rand(3, n, dtype=torch.float64)
    one_hot = sparseness_projection(x, torch.ones(3, dtype=torch.float64))
    assert torch.allclose((one_hot > 1e-9).sum(1), torch.ones(3, dtype=torch.long))
    uniform = sparseness_projection(x, torch.full((3,), math.sqrt(n), dtype=torch.float64))
    assert torch.allclose(uniform, torch.full_like(uniform, 1 / math.sqrt(n)), atol=1e-6)
    # a vector that already has the constraints is its own projection
    y = x / x.norm(dim=1, keepdim=True)
    assert torch.allclose(sparseness_projection(y, y.sum(1)), y, atol=1e-9)


def test_projection_is_closest_among_random_feasible_points():
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(1, 12, generator=gen, dtype=torch.float64)
    x0 = x0 / x0.norm()
    l1 = torch.tensor([2.0], dtype=torch.float64)
    p = sparseness_projection(x0, l1)
    others = sparseness_projection(torch.rand(500, 12, generator=gen, dtype=torch.float64), l1.expand(500))
    assert (p - x0).norm() <= (others - x0).norm(dim=1).min() + 1e-9


def test_make_targets_appends_canonical_vectors():
    out = make_targets(5, 7, True, torch.Generator().manual_seed(0))
    assert out["targets"].shape == (12, 7)
    assert torch.equal(out["targets"][5:], torch.eye(7))
    assert out["canonical"].tolist() == [False] * 5 + [True] * 7
    with pytest.raises(ValueError, match="no targets"):
        make_targets(0, 7, False, torch.Generator())
