"""The two-layer network, its fixed-feature baselines and the alignment measures (SPEC 4.2-4.3).

The behavior tests use reduced sizes that still show the effect in seconds: d = 60, D = 30, k = 5, m = 50
(100 hidden units), 1,200 training samples, 250 small steps, 2 seeds (paper: d 500, D 100, m 300, 10,000 samples).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow.config import ShiSpec
from featflow.data.shi import design_gamma, generate_shi, linear_ceiling, parity_labels, sample_patterns
from featflow.theory import alignment, fixed_features, two_layer
from featflow.theory.two_layer import Params, TheorySpec


def test_smoothed_activation_matches_monte_carlo_and_its_derivative():
    z = np.linspace(-0.6, 1.6, 23)
    xi = np.random.default_rng(0).normal(0.0, 0.2, size=(200000, 1))
    value, slope = two_layer.smoothed(z, 0.2)
    np.testing.assert_allclose(value, two_layer.sigma(z + xi).mean(axis=0), atol=3e-3)
    eps = 1e-5
    numeric = (two_layer.smoothed(z + eps, 0.2)[0] - two_layer.smoothed(z - eps, 0.2)[0]) / (2 * eps)
    np.testing.assert_allclose(slope, numeric, atol=1e-6)
    np.testing.assert_allclose(two_layer.smoothed(z, 1e-6)[0], two_layer.sigma(z), atol=1e-6)
    np.testing.assert_array_equal(two_layer.smoothed(z, None)[0], np.clip(z, 0, 1))


def _tiny(seed: int = 0) -> tuple[Params, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = two_layer.init_params(6, 8, 3, 1.5, 2, rng)
    params.W += rng.normal(0, 0.3, params.W.shape)  # break the symmetry so that every term is exercised
    params.c += rng.normal(0, 0.1, 2)
    return params, rng.normal(0, 0.5, (40, 8)), np.where(rng.random(40) < 0.5, 1.0, -1.0)


def test_symmetric_initialization_gives_a_zero_network():
    params = two_layer.init_params(20, 10, 5, 2.0, 3, np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(50, 10))
    np.testing.assert_allclose(two_layer.predict(params, x), 0.0, atol=1e-12)
    np.testing.assert_array_equal(params.W[:, :20], params.W[:, 20:])
    np.testing.assert_array_equal(params.a[:, :20], -params.a[:, 20:])


@pytest.mark.parametrize("s", [None, 0.1])
def test_gradients_agree_with_torch_autograd(s):
    params, x, y = _tiny()
    grad = two_layer.gradients(params, x, y, s)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in vars(params).items()}
    xt, yt = torch.tensor(x), torch.tensor(y)
    z = xt @ t["W"].transpose(1, 2) + t["b"][:, None]
    if s is None:
        h = z.clamp(0, 1)
    else:  # E relu(z + xi) - E relu(z - 1 + xi) with the normal CDF and density, written out in torch
        normal = torch.distributions.Normal(0.0, 1.0)
        r = lambda u: u * normal.cdf(u / s) + s * normal.log_prob(u / s).exp()  # noqa: E731
        h = r(z) - r(z - 1)
    f = (h * t["a"][:, None]).sum(-1) + t["c"][:, None]
    torch.clamp(1 - yt * f, min=0).mean(-1).sum().backward()
    for key in ("W", "b", "a", "c"):
        np.testing.assert_allclose(getattr(grad, key), t[key].grad.numpy(), atol=1e-10)


def test_ntk_kernel_is_the_gram_matrix_of_the_tangent_features():
    params, x, _ = _tiny(1)
    x_test = x[:7] + 0.1
    kern, kern_test = fixed_features.ntk_kernels(params, x, x_test)

    def features(xx):  # explicit (sigma(z), a0 sigma'(z) x, a0 sigma'(z), 1): the gradient of g in (a, W, b, c)
        h, slope = two_layer.hidden(params, xx)
        da = slope * params.a[:, None]
        dw = (da[..., None] * xx[None, :, None, :]).reshape(*da.shape[:2], -1)
        return np.concatenate([h, dw, da, np.ones(da.shape[:2] + (1,))], axis=2)

    phi, phi_test = features(x), features(x_test)
    np.testing.assert_allclose(kern, phi @ phi.transpose(0, 2, 1), rtol=1e-10)
    np.testing.assert_allclose(kern_test, phi_test @ phi.transpose(0, 2, 1), rtol=1e-10)
    np.testing.assert_allclose(fixed_features.top_eigenvalue(kern, 200), np.linalg.eigvalsh(kern)[:, -1], rtol=1e-6)


def test_aggressive_step_replaces_the_first_layer_by_the_negative_gradient():
    params, x, y = _tiny(2)
    after = two_layer.aggressive_step(params, x, y, 0.7, 0.1)
    np.testing.assert_allclose(after.W, -0.7 * two_layer.gradients(params, x, y, 0.1).W)
    np.testing.assert_array_equal(after.a, params.a)


def test_linear_training_decreases_the_hinge_loss_and_lr_is_the_inverse_curvature():
    rng = np.random.default_rng(3)
    h = rng.random((1, 200, 12)).repeat(2, axis=0)
    y = np.where(h[0, :, 0] + h[0, :, 1] > 1.0, 1.0, -1.0)
    lr = two_layer.lipschitz_lr(h)
    f1 = np.concatenate([h, np.ones((2, 200, 1))], axis=2)
    np.testing.assert_allclose(lr, 1 / np.linalg.eigvalsh(f1.transpose(0, 2, 1) @ f1 / 200)[:, -1])
    a0 = rng.normal(0, 0.1, (2, 12))
    a, c, curve = two_layer.train_linear(
        h, h, y, y, a0, np.zeros(2), lr=5 * lr, steps=500, weight_decay=0.0, record=np.array([0, 500])
    )
    loss = lambda a, c: np.maximum(0, 1 - y * (np.einsum("snp,sp->sn", h, a) + c[:, None])).mean(1)  # noqa: E731
    assert (loss(a, c) < 0.5 * loss(a0, np.zeros(2))).all()
    assert (curve[:, 1] > 0.9).all()


@pytest.fixture(scope="module")
def runs():
    """Network, baselines and alignment on both families at the reduced test size."""
    # a coarse cross-validation grid keeps the fixture fast (the default grid: test_theory_baselines.py)
    grid = {"baseline_C_points": 4, "baseline_gamma_points": 2, "baseline_folds": 2}
    spec = TheorySpec(m=50, seeds=2, steps=250, eval_every=50, **grid)
    out = {}
    for structured in (True, False):
        shi = ShiSpec(d=60, D=30, k=5, p0=0.5, structured=structured)
        rng = np.random.default_rng(0)
        train, test, m = generate_shi(shi, 1200, 800, rng)
        data = (train.x, train.y.astype(float), test.x, test.y.astype(float))
        consts = two_layer.schedule_constants(spec, 5, float(train.phi.var(axis=0).sum()), design_gamma(shi))
        init = two_layer.init_params(spec.m, shi.d, shi.k, consts["sigma_a"], spec.seeds, rng)
        net = two_layer.train_network(spec, init, *data, consts=consts)
        base = fixed_features.train_baselines(spec, init, *data, net.steps)
        eff = m[:, :5].sum(axis=1) / np.linalg.norm(m[:, :5].sum(axis=1))
        cos = {k: alignment.feature_cosines(p.W, np.stack([eff, -eff])) for k, p in net.snapshots.items()}
        probes = {k: alignment.linear_probe(net.snapshots[k], *data) for k in ("step1", "step2")}
        probes["step1_standardized"] = alignment.linear_probe(net.snapshots["step1"], *data, standardize=True)
        out[structured] = net, base, cos, probes
        if structured:
            out["data"], out["init"] = data, init
    return out


def test_network_beats_fixed_features_on_structured_data(runs):
    net, base, _, _ = runs[True]
    final = net.test_acc[:, -1]
    assert final.min() > 0.95
    assert final.min() - base.random_features[:, -1].max() > 0.12
    assert final.min() - base.ntk[:, -1].max() > 0.12
    assert final.min() - base.optima["rbf_svm"].accuracy.max() > 0.12


def test_every_model_is_near_chance_without_structure(runs):
    net, base, _, _ = runs[False]
    for acc in (net.test_acc[:, -1], base.random_features[:, -1], base.ntk[:, -1], base.optima["rbf_svm"].accuracy):
        assert np.abs(acc - 0.5).max() < 0.07


def test_alignment_rises_in_the_first_two_steps_only_with_structure(runs):
    _, _, cos, _ = runs[True]
    assert cos["init"].mean() < 0.3
    assert cos["step1"].mean() > 0.9 and cos["step2"].mean() > 0.95
    assert (cos["step2"] > 0.9).mean() > 0.9
    _, _, flat, _ = runs[False]
    assert flat["step2"].mean() < 0.3


def test_probe_is_near_chance_after_step_one_and_near_perfect_after_step_two(runs):
    _, _, _, probes = runs[True]
    assert np.abs(probes["step1"][0] - 0.5).max() < 0.06
    assert probes["step2"][0].min() > 0.95


def test_raw_probe_after_step_one_is_a_constant_predictor_and_standardized_features_carry_the_label(runs):
    """The paper's ~52% after step 1 is a probe predicting one class (hidden units vary by ~1e-4); on
    standardized hidden units the same probe is far above chance: the features are already there."""
    _, _, cos, probes = runs[True]
    accuracy, constant = probes["step1"]
    assert constant.all()
    _, y, _, y_test = runs["data"]
    shares = [(y_test > 0).mean(), (y_test < 0).mean()]  # a constant predictor scores one class's share
    assert all(min(abs(a - share) for share in shares) < 1e-12 for a in accuracy)
    assert probes["step1_standardized"][0].min() > 0.7
    assert cos["step1"].mean() > 0.9


def test_mds_places_aligned_neurons_on_the_effective_features():
    rng = np.random.default_rng(4)
    v = rng.normal(size=20)
    v /= np.linalg.norm(v)
    w = np.concatenate([np.outer(rng.uniform(0.5, 2, 10), v), -np.outer(rng.uniform(0.5, 2, 10), v)])
    coords, stress = alignment.mds_map(w + 1e-4 * rng.normal(size=w.shape), np.stack([v, -v]), 0)
    assert coords.shape == (22, 2)
    np.testing.assert_allclose(coords[:10], coords[20][None].repeat(10, 0), atol=0.05)
    np.testing.assert_allclose(coords[10:20], coords[21][None].repeat(10, 0), atol=0.05)
    assert np.linalg.norm(coords[20] - coords[21]) > 1.0  # 1 - cos = 2 between the two features


def test_nearly_frozen_features_reproduce_the_frozen_schedule():
    """feature_lr_scale -> 0 (every parameter trained, W and b at a vanishing rate) agrees with the frozen path,
    and a positive rate moves W after step 2."""
    shi = ShiSpec(d=30, D=12, k=3)
    train, test, _ = generate_shi(shi, 300, 100, np.random.default_rng(5))
    data = (train.x, train.y.astype(float), test.x, test.y.astype(float))
    runs = {}
    for scale in (0.0, 1e-12, 0.05):
        spec = TheorySpec(m=10, seeds=2, steps=30, eval_every=10, feature_lr_scale=scale)
        consts = two_layer.schedule_constants(spec, 3, float(train.phi.var(axis=0).sum()), design_gamma(shi))
        init = two_layer.init_params(10, 30, 3, consts["sigma_a"], 2, np.random.default_rng(6))
        runs[scale] = two_layer.train_network(spec, init, *data, consts=consts)
    np.testing.assert_allclose(runs[1e-12].test_acc, runs[0.0].test_acc)
    np.testing.assert_allclose(runs[1e-12].snapshots["end"].a, runs[0.0].snapshots["end"].a, rtol=1e-6)
    np.testing.assert_array_equal(runs[0.0].snapshots["end"].W, runs[0.0].snapshots["step2"].W)
    assert np.abs(runs[0.05].snapshots["end"].W - runs[0.05].snapshots["step2"].W).max() > 1e-6


def test_fixed_feature_baselines_are_reported_at_their_convex_optimum(runs):
    """Random features and the linear model on x: the reported accuracy is the optimum of their convex loss
    (checked against liblinear, an independent solver, at the chosen weight decay)."""
    from sklearn.svm import LinearSVC

    net, base, _, _ = runs[True]
    x, y, x_test, y_test = runs["data"]
    init = runs["init"]
    h, h_test = two_layer.hidden(init, x)[0], two_layer.hidden(init, x_test)[0]
    rf = base.optima["random_features"]
    for s in range(h.shape[0]):
        ref = LinearSVC(C=rf.C[s], loss="hinge", dual=True, tol=1e-6, max_iter=200_000).fit(h[s], y)
        assert abs(rf.accuracy[s] - ref.score(h_test[s], y_test)) <= 0.01
    linear = base.optima["linear"]
    ref = LinearSVC(C=linear.C[0], loss="hinge", dual=True, tol=1e-6, max_iter=200_000).fit(x, y).score(x_test, y_test)
    assert abs(linear.accuracy[0] - ref) <= 0.02


def test_linear_ceiling_is_the_best_count_threshold_rule():
    rng = np.random.default_rng(7)
    for structured, expected in ((True, 0.84375), (False, 0.6875)):
        shi = ShiSpec(d=10, D=8, k=5, p0=0.5, structured=structured)
        assert linear_ceiling(shi) == pytest.approx(expected)
        phi = sample_patterns(shi, 200_000, rng)
        y, count = parity_labels(phi, 5), phi[:, :5].sum(axis=1)
        best = max(((count >= t) == (y > 0)).mean() for t in range(7))
        assert best == pytest.approx(expected, abs=0.005)
