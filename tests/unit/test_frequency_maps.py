"""Essential vs adversarial frequency maps (SPEC 3.2): maps of a low-pass network live in its band; the linear
similarity measures have their defining invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow.frequency.freq_maps import (
    authors_p_value,
    canonical_correlations,
    frequency_maps,
    idcor_rows,
    map_loss,
    map_rows,
    map_support,
    mean_cosine,
    support_record,
    support_summary,
    svcca,
)
from featflow.frequency.masks import predict
from featflow.models.attacks import pgd_linf
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
    # lam per weight: the sum over 16 x 16 weights makes 0.01 as strong as the mean form's 2.56
    kw = {"lam": 0.01, "lr": 0.05, "min_steps": 100, "max_steps": 600, "window": 20, "tol": 1e-4}
    for inputs, target in ((x, y), (x_adv, y_adv)):
        fit = frequency_maps(net, inputs, target, **kw)
        maps = fit.maps
        assert maps.shape == inputs.shape
        assert fit.converged.all() and (fit.steps > kw["min_steps"]).all() and (fit.steps < kw["max_steps"]).all()
        assert maps[:, 0][:, band == 0].max() < 0.05  # frequencies the network never sees are dropped
        kept = maps[:, 0][:, band > 0].sum(1)
        assert kept.min() > 0 and (kept / maps.flatten(1).sum(1)).min() > 0.97  # what is kept is in the band
        assert (predict(net, inputs, maps)[0] == target).float().mean() > 0.8


def test_map_loss_sums_the_l1_norm_as_the_authors() -> None:
    """At M = 1 the loss is CE + lam * 3 * H * W (the authors' lam * sum|M|, not a mean)."""
    gen = torch.Generator().manual_seed(0)
    logits, target = torch.randn(5, 4, generator=gen), torch.randint(0, 4, (5,), generator=gen)
    ones = torch.ones(5, 3, 32, 32)
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(map_loss(logits, target, ones, 0.5), ce + 0.5 * 3 * 32 * 32)


def test_maps_that_do_not_converge_are_recorded() -> None:
    torch.set_num_threads(1)
    net = LowPassNet(low_pass_band()).eval()
    x = torch.rand(4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    y, _ = predict(net, x)
    fit = frequency_maps(net, x, y, lam=0.01, lr=0.001, min_steps=5, max_steps=30, window=5, tol=1e-9)
    assert not fit.converged.any() and (fit.steps == 30).all() and np.isfinite(fit.loss).all()


def test_map_rows_are_raw_and_idcor_rows_standardized() -> None:
    maps = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    rows = map_rows(maps, pool=2)
    assert rows.shape == (10, 3 * 4 * 4)
    shifted = torch.fft.fftshift(maps, dim=(-2, -1))
    torch.testing.assert_close(rows[0, 0], shifted[0, 0, :2, :2].max().double())  # raw maxima, not z-scores
    scaled = idcor_rows(rows)
    torch.testing.assert_close(scaled.norm(dim=1), torch.ones(10, dtype=scaled.dtype))


def test_cosine_of_raw_maps_is_the_authors() -> None:
    """Nonnegative maps sharing a bright low-frequency block: raw cosine high (the authors' measure), the
    standardized rows' cosine near 0 (the shared block is removed by centering)."""
    gen = torch.Generator().manual_seed(0)
    base = torch.zeros(40, 3, 8, 8)
    base[..., :2, :2] = 1.0
    a = base + 0.2 * torch.rand(40, 3, 8, 8, generator=gen)
    b = base + 0.2 * torch.rand(40, 3, 8, 8, generator=gen)
    ra, rb = map_rows(a, 1), map_rows(b, 1)
    expected = ((ra * rb).sum(1) / ra.norm(dim=1) / rb.norm(dim=1)).mean()
    assert mean_cosine(ra, rb) == pytest.approx(float(expected)) and mean_cosine(ra, rb) > 0.7
    assert abs(mean_cosine(idcor_rows(ra), idcor_rows(rb))) < 0.1


def test_canonical_correlations_match_the_whitened_cross_covariance() -> None:
    gen = np.random.default_rng(0)
    a, b = gen.normal(size=(500, 3)), gen.normal(size=(500, 4))
    b[:, 0] += 2 * a[:, 0] - a[:, 1]
    ac, bc = a - a.mean(0), b - b.mean(0)

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w**-0.5) @ v.T

    whitened = inv_sqrt(ac.T @ ac) @ ac.T @ bc @ inv_sqrt(bc.T @ bc)
    expected = np.linalg.svd(whitened, compute_uv=False)
    np.testing.assert_allclose(canonical_correlations(torch.from_numpy(a), torch.from_numpy(b)).numpy(), expected)


def numpy_svcca(a: np.ndarray, b: np.ndarray, keep: float = 0.99) -> float:
    """Raghu et al.'s SVCCA as anatome defines it, directly in NumPy: project the uncentered data on the right
    singular vectors whose cumulative singular-value share is below ``keep``, then average the canonical
    correlations of the centered projections (whitened cross-covariance)."""

    def reduce(m: np.ndarray) -> np.ndarray:
        _, s, vt = np.linalg.svd(m, full_matrices=False)
        return m @ vt[: int((np.cumsum(s) / s.sum() < keep).sum())].T

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w**-0.5) @ v.T

    ra, rb = reduce(a), reduce(b)
    ac, bc = ra - ra.mean(0), rb - rb.mean(0)
    rho = np.linalg.svd(inv_sqrt(ac.T @ ac) @ ac.T @ bc @ inv_sqrt(bc.T @ bc), compute_uv=False)
    return float(rho.sum() / min(ra.shape[1], rb.shape[1]))


def test_svcca_known_answers() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=gen, dtype=torch.float64) * torch.tensor([5.0, 4, 3, 2, 1, 0.01])
    assert svcca(a, 2.5 * a) == pytest.approx(1.0)  # isotropic scaling
    assert svcca(a, torch.randn(400, 6, generator=gen, dtype=torch.float64)) < 0.15
    b = torch.cat([a[:, :2] + 0.5 * torch.randn(400, 2, generator=gen, dtype=torch.float64), a[:, 2:]], 1) @ (
        torch.randn(6, 6, generator=gen, dtype=torch.float64)
    )
    assert svcca(a, b) == pytest.approx(numpy_svcca(a.numpy(), b.numpy()), rel=1e-9)
    assert 0.3 < svcca(a, b) < 1.0


def test_fmn_finds_the_minimal_linf_perturbation_of_a_linear_classifier() -> None:
    """For logits (w.x + b, 0) the smallest L_inf change that flips the class is |w.x + b| / ||w||_1 (away from
    the box bounds); FMN (the authors' attack) reaches it within a few percent."""
    pytest.importorskip("foolbox")
    from featflow.models.attacks import fmn_linf

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3 * 4 * 4, generator=gen)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(w.numel(), 2)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.stack([w, torch.zeros_like(w)]))
        net[1].bias.zero_()
    x = 0.5 + 0.02 * torch.randn(16, 3, 4, 4, generator=gen)  # far from the [0, 1] bounds
    y = net(x).argmax(1)
    minimal = (x.flatten(1) @ w).abs() / w.abs().sum()
    x_adv = fmn_linf(net, x, y, steps=100)
    found = (x_adv - x).flatten(1).abs().amax(1)
    assert (net(x_adv).argmax(1) != y).all()
    assert (found >= minimal * (1 - 1e-4)).all() and (found <= minimal * 1.05).all(), found / minimal


def test_map_support_counts_kept_weights_and_flags_dc_only() -> None:
    """Issue 27: a map holding only the DC terms is a gain on the mean intensity; weights below 1e-3 of the map's
    largest do not count."""
    maps = torch.zeros(3, 2, 8, 8)
    maps[0, :, 0, 0] = 1.0  # DC of both channels only
    maps[0, 0, 3, 3] = 5e-4  # below 1e-3 of the largest: not kept
    maps[1, 0, 0, 0], maps[1, 1, 2, 5], maps[1, 0, 7, 1], maps[1, 1, 4, 4] = 0.5, 0.2, 0.01, 0.9
    count, dc_only = map_support(maps)  # maps[2] is all zero: keeps nothing
    np.testing.assert_array_equal(count, [2, 4, 0])
    np.testing.assert_array_equal(dc_only, [True, False, True])


def test_low_support_is_flagged(caplog: pytest.LogCaptureFixture) -> None:
    maps = torch.zeros(6, 1, 8, 8)
    maps[:, 0, 0, 0] = 1.0
    maps[:2, 0, 1:4, 1] = 0.5  # 4 kept weights in 2 maps, DC-only in the other 4
    record = support_record(maps, maps.clone(), np.ones(6, bool))
    low = support_summary(record, np.ones(6, bool), min_support=4)
    assert low["support_median_essential"] == 1.0 and low["dc_only_adversarial"] == pytest.approx(4 / 6)
    assert not low["support_ok"] and "not applicable" in caplog.text
    high = support_summary(record, np.arange(6) < 2, min_support=4)  # only the two supported maps paired
    assert high["support_median_essential"] == 4.0 and high["support_ok"]


def test_authors_p_value_is_their_z_score() -> None:
    """The authors' correlation.py: a function of the other (joint dimension that of one set) gives a z-score far
    below the shuffles' (p ~ 0); independent maps give p far from 0."""
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(200, 2, generator=gen, dtype=torch.float64)
    lift = torch.randn(2, 16, generator=gen, dtype=torch.float64)
    a = (t @ lift).reshape(200, 1, 4, 4)
    z, p = authors_p_value(a, torch.tanh(a), n_shuffles=20, seed=0)
    assert z < -3 and p < 2e-3
    other = (torch.rand(200, 2, generator=gen, dtype=torch.float64) @ lift).reshape(200, 1, 4, 4)
    assert authors_p_value(a, other, n_shuffles=20, seed=0)[1] > 0.05


def test_maps_figure_shows_weights_on_a_log_scale_with_axes_and_channel_names() -> None:
    """Issue 27: the figure was black with one lit pixel per panel (linear scale, no colorbar or axes)."""
    from matplotlib.colors import LogNorm

    from featflow.plots.frequency import maps_figure

    gen = torch.Generator().manual_seed(0)
    maps = (torch.rand(2, 6, 3, 8, 8, generator=gen) ** 8).numpy()  # mostly tiny weights, a few large
    paired = np.ones(6, bool)
    record = support_record(torch.from_numpy(maps[0]), torch.from_numpy(maps[1]), paired)
    d = {"essential": maps[0], "adversarial": maps[1], "paired": paired, "support": record}
    d |= {"keep_essential": paired, "keep_adversarial": paired}
    row = {"idcor": 0.5, "p_value": 0.02, "p_value_stratified": 0.03, "p_value_authors": 0.01, "cosine": 0.4}
    row |= {"svcca": 0.3, "linear_cka": 0.2, "attack": "fmn", "pool": 2, "all_converged": True, "steps_max": 90}
    row |= support_summary(record, paired, min_support=4)
    fig = maps_figure(d, row)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and all(isinstance(ax.images[0].norm, LogNorm) for ax in panels)
    assert len(fig.axes) == 6 + 2 + 6  # the map panels, one support histogram per family, a colorbar per panel
    assert all("cycles" in ax.get_xlabel() for ax in panels)
    assert {ax.get_title().split(", ")[1].split(" ")[0] for ax in panels} == {"red", "green", "blue"}
    assert panels[0].images[0].get_extent() == [-4.5, 3.5, -3.5, 4.5]
    assert "authors' z-score p 0.01" in fig._suptitle.get_text()
