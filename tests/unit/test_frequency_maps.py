"""Essential vs adversarial frequency maps (SPEC 3.2): maps of a low-pass network live in its band; the linear
similarity measures have their defining invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow.frequency.attacks import pgd_linf
from featflow.frequency.fourier_masks import predict
from featflow.frequency.freq_maps import frequency_maps, map_features, mean_cosine
from featflow.metrics.cka import linear_cka
from tests.unit.test_frequency_masks import SIZE, LowPassNet, low_pass_band


def test_essential_and_adversarial_maps_stay_in_the_band() -> None:
    torch.set_num_threads(1)
    band = low_pass_band()
    net = LowPassNet(band).eval()
    x = torch.rand(16, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    y, _ = predict(net, x)
    x_adv = pgd_linf(net, x, y, eps=0.3, steps=10, generator=torch.Generator().manual_seed(0))
    y_adv, _ = predict(net, x_adv)
    assert (y_adv != y).float().mean() > 0.5
    kw = {"lam": 0.5, "lr": 0.05, "max_steps": 150, "patience": 20, "tol": 1e-5}
    for inputs, target in ((x, y), (x_adv, y_adv)):
        maps = frequency_maps(net, inputs, target, **kw)
        assert maps.shape == inputs.shape
        assert maps[:, 0][:, band == 0].max() < 0.05  # frequencies the network never sees are dropped
        kept = maps[:, 0][:, band > 0].sum(1)
        assert kept.min() > 0 and (kept / maps.flatten(1).sum(1)).min() > 0.97  # what is kept is in the band
        assert (predict(net, inputs, maps)[0] == target).float().mean() > 0.8


def test_map_features_are_unit_rows() -> None:
    maps = torch.rand(10, 3, 8, 8)
    rows = map_features(maps, pool=2)
    assert rows.shape == (10, 3 * 4 * 4)
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(10, dtype=rows.dtype))


def test_linear_cka_invariances_and_cosine() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, 6, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    assert linear_cka(a.numpy(), (3.0 * a @ q).numpy()) == pytest.approx(1.0)  # orthogonal maps and isotropic scaling
    b = torch.randn(200, 6, generator=gen, dtype=torch.float64)
    assert linear_cka(a.numpy(), b.numpy()) < 0.15
    assert mean_cosine(a, 2 * a) == pytest.approx(1.0)
    assert mean_cosine(a, -a) == pytest.approx(-1.0)
    assert np.isclose(mean_cosine(a, b), 0.0, atol=0.15)
