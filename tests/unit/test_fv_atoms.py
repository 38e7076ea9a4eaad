"""Pictures of features (featflow.fv.atoms): a picture drives the layer's response along its atom, far more than
noise does (on a layer with a known answer, the picture of a color's atom is that color); maximizing the feature's
own code gives a picture whose atom is the nearest, where maximizing S_x along the atom does not; one batch gives
each feature's picture alone; the features drawn are the simplest, the most complex and the requested ones; the
response is pooled as the experiment's activations; k-means meta-features recover planted groups of atoms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from featflow.activations import pool
from featflow.complexity.meta import by_complexity, cluster_atoms, meta_table
from featflow.config import ModelSpec
from featflow.dictionary.loaded import SAEDictionary
from featflow.dictionary.nmf import NMFDictionary
from featflow.dictionary.topk import TopKDictionary
from featflow.fv.atoms import (
    PicturesSpec,
    atom_pictures,
    baseline_cosine,
    code_response,
    flagged,
    response_fn,
    select_features,
)
from featflow.fv.objectives import unit
from featflow.models import Classifier, build_model, capture
from featflow.models.hooks import run_until

SHAPE = (3, 16, 16)
COLORS = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0]])


def small_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelSpec(arch="smallcnn", dataset="p", width=4), SHAPE, 4).eval()


def color_net() -> Classifier:
    """A layer with a known answer: y = relu([c - 1/4; 3/4 - c]) of the mean color c (6 units, all live at mid-gray).
    The atom of a pure color is its response; S_x(y) is largest, at cos(y, x) = 1, for an image of exactly that mean
    color (for every k >= 0 the dot product grows as each channel goes to the color's 0 or 1)."""
    linear = nn.Linear(3, 6)
    with torch.no_grad():
        linear.weight.copy_(torch.cat([torch.eye(3), -torch.eye(3)]))
        linear.bias.copy_(torch.tensor([-0.25] * 3 + [0.75] * 3))
    body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear, nn.ReLU())
    return Classifier(body, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).eval()


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    fn = response_fn(color_net(), "3", "gap")
    with torch.no_grad():
        atoms = unit(fn(COLORS[:, :, None, None].expand(-1, *SHAPE)))
    spec = PicturesSpec(adam_steps=150, k=2)
    features = list(range(6))
    pics = atom_pictures(
        fn, SHAPE, NMFDictionary(atoms, ridge=0.01), features, spec, seed=0, device=torch.device("cpu")
    )
    return fn, atoms, features, spec, pics


def test_the_picture_of_a_color_atom_is_that_color_far_beyond_noise(setup):
    fn, atoms, _, _, pics = setup
    base = baseline_cosine(fn, SHAPE, atoms, torch.Generator().manual_seed(1))
    assert pics["images"].shape == (6, *SHAPE) and pics["images"].min() >= 0 and pics["images"].max() <= 1
    assert (pics["cosine"] > 0.999).all(), pics["cosine"]
    torch.testing.assert_close(pics["images"].mean(dim=(2, 3)), COLORS, atol=0.05, rtol=0)
    assert (pics["cosine"] > base + 0.2).all(), (pics["cosine"], base)
    # the recorded numbers are those of the stored picture
    with torch.no_grad():
        y = fn(pics["images"])
    torch.testing.assert_close(y, pics["responses"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close((unit(y) * unit(atoms)).sum(1), pics["cosine"], atol=1e-5, rtol=1e-4)
    assert (pics["objective"] > 0).all() and torch.isfinite(pics["grad_norm"]).all()


def test_the_dot_product_objective_reaches_the_same_colors(setup):
    fn, atoms, features, _, _ = setup
    for target in ("code", "atom"):
        spec = PicturesSpec(adam_steps=150, k=0, target=target)
        pics = atom_pictures(
            fn, SHAPE, NMFDictionary(atoms, ridge=0.01), features, spec, seed=0, device=torch.device("cpu")
        )
        torch.testing.assert_close(pics["images"].mean(dim=(2, 3)), COLORS, atol=0.05, rtol=0)


def test_the_optimizer_raises_the_objective_from_its_start(setup):
    fn, atoms, features, _, pics = setup
    start = atom_pictures(
        fn,
        SHAPE,
        NMFDictionary(atoms, ridge=0.01),
        features,
        PicturesSpec(adam_steps=0),
        seed=0,
        device=torch.device("cpu"),
    )
    assert (pics["objective"] > 2 * start["objective"]).all()
    assert (pics["cosine"] > start["cosine"]).all()


def test_one_batch_gives_each_features_picture_alone():
    """Adam is per coordinate and each start is drawn from (seed, id): batching changes nothing, and a feature's
    picture does not depend on the features drawn beside it (or on their order). On a small CNN's hidden layer."""
    fn = response_fn(small_cnn(), "act", "gap")
    gen = torch.Generator().manual_seed(0)
    dictionary = NMFDictionary(unit(torch.rand((24, 16), generator=gen)), ridge=0.01)
    spec, cpu = PicturesSpec(adam_steps=40), torch.device("cpu")
    pics = atom_pictures(fn, SHAPE, dictionary, [3, 7, 11, 19], spec, seed=0, device=cpu)
    for row, feature in [(0, 3), (2, 11)]:
        alone = atom_pictures(fn, SHAPE, dictionary, [feature], spec, seed=0, device=cpu)
        torch.testing.assert_close(alone["images"][0], pics["images"][row], atol=1e-4, rtol=0)
        torch.testing.assert_close(alone["cosine"][0], pics["cosine"][row], atol=1e-5, rtol=0)
    flipped = atom_pictures(fn, SHAPE, dictionary, [19, 11, 7, 3], spec, seed=0, device=cpu)
    torch.testing.assert_close(flipped["images"].flip(0), pics["images"], atol=1e-4, rtol=0)
    other_seed = atom_pictures(fn, SHAPE, dictionary, [3], spec, seed=1, device=cpu)
    assert not torch.allclose(other_seed["images"][0], pics["images"][0], atol=1e-3)


def test_the_fft_parametrizations_reach_the_colors_too(setup):
    fn, atoms, features, _, _ = setup
    for kind in ("fft", "fft_energy"):
        pics = atom_pictures(
            fn,
            SHAPE,
            NMFDictionary(atoms, ridge=0.01),
            features,
            PicturesSpec(parametrization=kind, lr=1.0, adam_steps=150),
            seed=0,
            device=torch.device("cpu"),
        )
        assert (pics["cosine"] > 0.99).all(), (kind, pics["cosine"])


@pytest.mark.parametrize("mode", ["gap", "grid2"])
def test_the_response_is_pooled_as_the_experiments_activations(mode):
    """A conv layer's response is the activation file's vector for that layer: pool(output, activations.pool)."""
    model = small_cnn()
    images = torch.rand((2, *SHAPE), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), capture(model, ["block2"]) as outputs:
        run_until(model, images)
        stored = pool(outputs["block2"], mode)
    with torch.no_grad():
        torch.testing.assert_close(response_fn(model, "block2", mode)(images), stored)
    assert stored.shape == (2, 8 * (1 if mode == "gap" else 4))


def test_select_features_simplest_most_complex_and_requested():
    k = np.array([0.5, np.nan, 0.1, 0.9, 0.3, 0.7, np.nan, 0.2])
    features, roles = select_features(k, 2, [6, 4])
    assert features.tolist() == [2, 7, 3, 5, 6, 4] and roles.tolist() == [0, 0, 1, 1, 2, 2]
    # an id already drawn keeps its role; more features than there are: each once, NaN never drawn
    features, roles = select_features(k, 5, [2])
    assert sorted(features.tolist()) == [0, 2, 3, 4, 5, 7] and features[:5].tolist() == [2, 7, 4, 0, 5]
    assert roles.tolist() == [0, 0, 0, 0, 0, 1]
    features, roles = select_features(k, 0, [1])
    assert features.tolist() == [1] and roles.tolist() == [2]
    with pytest.raises(ValueError, match=r"complexity\.pictures\.ids': \[8\]"):
        select_features(k, 2, [8])


def mean_color_net() -> Classifier:
    """A layer with a known answer: y = the image's mean color, so the responses reachable are the cube [0, 1]^3."""
    body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(body, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).eval()


def test_maximizing_the_code_pictures_the_feature_where_the_atom_direction_does_not():
    """Issue 26.5. Atoms d_0 = (1, .3, 0) and d_1 = (1, .6, 0) (unit) on y = mean color; data: 200 images of uniform
    random colors. From the data's top image of feature 0, S_x(y) with x = d_0 pays for |y| as well as the angle:
    its optimum on the cube is y = (1, .485, 0) (d/db (1 + .3 b)^3 / (1 + b^2) = 0), past the bisector of d_0 and
    d_1 (b = .443), so d_1 is the nearer atom, z_1 > z_0 and z_0 is below the top image's: flagged. The code
    target keeps y_1 / y_0 below .3, where d_0 is nearest, z_0 the largest code and above the top image's."""
    fn = response_fn(mean_color_net(), "1", "gap")
    dictionary = NMFDictionary(unit(torch.tensor([[1, 0.3, 0], [1, 0.6, 0], [0, 0, 1.0]])), ridge=0.01)
    data = torch.rand((200, 3), generator=torch.Generator().manual_seed(0))
    codes = dictionary.encode(data)[:, 0]
    top, start = codes.max().numpy(), data[codes.argmax()][None, :, None, None].expand(1, 3, 8, 8)
    cpu = torch.device("cpu")
    pics = {
        target: atom_pictures(
            fn,
            (3, 8, 8),
            dictionary,
            [0],
            PicturesSpec(adam_steps=150, target=target),
            seed=0,
            device=cpu,
            start_images=start,
        )
        for target in ("atom", "code")
    }
    old, new = pics["atom"], pics["code"]
    assert abs(float(old["responses"][0, 1] / old["responses"][0, 0]) - 0.485) < 0.02, old["responses"]
    assert old["rank"].tolist() == [2] and old["code_rank"].tolist() == [2] and old["code"] < 0.5 * top
    assert flagged(old["code"].numpy(), top, old["code_rank"].numpy()).all()
    assert new["rank"].tolist() == [1] and new["code_rank"].tolist() == [1]
    assert float(new["responses"][0, 1] / new["responses"][0, 0]) < 0.3
    assert not flagged(new["code"].numpy(), top, new["code_rank"].numpy()).any(), (new["code"], top)
    # the recorded code is the branch's encoder's of the stored picture's response
    torch.testing.assert_close(new["code"], dictionary.encode(fn(new["images"]))[:, 0])


@pytest.mark.parametrize("signed", [False, True])
def test_the_code_response_is_the_encoders_code_and_its_exact_gradient(signed):
    """c(y) equals the branch's NNLS code (own feature included where on); off, the own entry is the KKT margin
    <= 0; the gradient is that of the active set's linear solve (checked by finite differences in float64). The
    same for Semi-NMF's signed atoms on a signed layer."""
    gen = torch.Generator().manual_seed(0)
    draw = torch.randn if signed else torch.rand
    atoms = unit(draw((12, 6), generator=gen, dtype=torch.float64))
    dictionary = NMFDictionary(atoms, code_iterations=5000, ridge=0.01, code_tol=1e-12)
    y = draw((5, 6), generator=gen, dtype=torch.float64)
    features = torch.tensor([0, 3, 5, 7, 11])
    c = code_response(dictionary, features)(y)
    z = dictionary.encode(y)
    rows = torch.arange(5)
    off = z[rows, features] == 0
    others = torch.ones_like(z, dtype=torch.bool)
    others[rows, features] = False
    torch.testing.assert_close(c[others], z[others], atol=1e-5, rtol=0)
    torch.testing.assert_close(c[rows, features][~off], z[rows, features][~off], atol=1e-5, rtol=0)
    assert (c[rows, features][off] <= 0).all()
    assert torch.autograd.gradcheck(lambda t: code_response(dictionary, features)(t), (y.requires_grad_(True),))


def test_meta_features_recover_planted_groups_of_atoms_sorted_by_complexity():
    """Issue 26.6 (Fel et al. Fig. 2). Four planted groups of 10 atoms each (a shared non-negative direction plus
    small noise, shuffled, at different scales) and a dead atom: k-means of the unit atoms gives back the groups
    exactly (whatever the seed), the dead atom stays out, and meta-feature 0 is the group of lowest mean K."""
    gen = np.random.default_rng(0)
    centres = gen.random((4, 16)) ** 4  # sparse-ish, far apart
    group = np.repeat(np.arange(4), 10)
    atoms = (centres[group] + 0.02 * gen.random((40, 16))) * gen.uniform(0.5, 2.0, (40, 1))
    order = gen.permutation(40)
    atoms, group = np.vstack([atoms[order], np.zeros((1, 16))]), np.append(group[order], -1)
    complexity = np.append(np.array([0.8, 0.2, 0.6, 0.4])[group[:-1]] + 0.01 * gen.random(40), np.nan)
    for seed in (0, 1):
        labels = by_complexity(cluster_atoms(atoms, 4, seed), complexity)
        assert labels[-1] == -1
        pairs = {(int(a), int(b)) for a, b in zip(labels[:-1], group[:-1], strict=True)}
        assert len(pairs) == 4 and {a for a, _ in pairs} == {0, 1, 2, 3}  # a one-to-one map: the planted groups
        assert dict(pairs) == {0: 1, 1: 3, 2: 2, 3: 0}  # numbered by mean K: 0.2, 0.4, 0.6, 0.8
    table = meta_table(labels, complexity)
    assert table["n_atoms"].tolist() == [10] * 4 and np.all(np.diff(table["mean_K"]) > 0)
    assert sorted(int(a) for a in table["atoms"][0].split()) == np.flatnonzero(group == 1).tolist()


def tiny_sae(k: int, d: int, active: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> TopKDictionary:
    """The topk method's SAE (featflow.dictionary.topk: codes TopK(ReLU(W (a - b) + c))) with random weights; with
    k <= d the encoder rows are orthonormal (moving along w_i moves only pre_i)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn((max(k, d), d), generator=gen, dtype=dtype)
    w = torch.linalg.qr(w)[0][:k] if k <= d else unit(w)
    b = 0.1 * torch.randn(d, generator=gen, dtype=dtype)
    c = 0.05 * torch.randn(k, generator=gen, dtype=dtype)
    return TopKDictionary(unit(torch.randn((k, d), generator=gen, dtype=dtype)), w, c, b, active=active)


def file_sae(kind: str) -> SAEDictionary:
    """The file method's SAE (featflow.dictionary.loaded) of :func:`tiny_sae`'s weights: ReLU, JumpReLU, TopK or
    both (float64)."""
    sae = tiny_sae(8, 12, active=3, dtype=torch.float64)
    threshold = 0.1 + 0.3 * torch.rand(8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return SAEDictionary(
        atoms=sae.atoms,
        encoder=sae.w_enc.T,
        b_enc=sae.b_enc,
        b_dec=sae.b_dec,
        threshold=threshold if "jump" in kind else None,
        active=3 if "topk" in kind else None,
    )


SAES = {
    "topk": lambda: tiny_sae(8, 12, active=3, dtype=torch.float64),
    "batchtopk": lambda: dataclasses.replace(tiny_sae(8, 12, active=3, dtype=torch.float64), threshold=0.2),
    **{f"file {kind}": lambda kind=kind: file_sae(kind) for kind in ("relu", "jumprelu", "topk", "jumprelu topk")},
}


@pytest.mark.parametrize("name", SAES)
def test_the_code_response_of_an_sae_is_its_encoders_code_with_autograds_gradient(name):
    """Through a feed-forward encoder (TopK, ReLU, JumpReLU SAEs): c(y) is encode(y) but for an inactive own
    feature, which is its pre-activation minus the threshold it must reach (< 0); the gradient matches finite
    differences (float64)."""
    sae = SAES[name]()
    assert not isinstance(sae, NMFDictionary)
    y = torch.randn((6, 12), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = sae.encode(y)
    rows, features = torch.arange(6), torch.tensor([0, 1, 2, 3, 4, 5])
    c = code_response(sae, features)(y)
    off = z[rows, features] == 0
    assert off.any() and (~off).any(), z  # both cases are tested
    pre, threshold = sae.gate(y)
    others = torch.ones_like(z, dtype=torch.bool)
    others[rows, features] = False
    torch.testing.assert_close(c[others], z[others])
    torch.testing.assert_close(c[rows, features][~off], z[rows, features][~off])
    torch.testing.assert_close(c[rows, features][off], (pre - threshold)[rows, features][off])
    assert (c[rows, features][off] < 0).all()
    assert torch.autograd.gradcheck(lambda t: code_response(sae, features)(t), (y.requires_grad_(True),))


def test_an_inactive_sae_features_continuation_rises_to_0_as_it_turns_on():
    """Along y + t w_i (orthonormal encoder rows: only pre_i moves) the own feature's c_i is negative and strictly
    increasing while feature i is off, within one step of 0 just before it turns on, and its code after."""
    sae = tiny_sae(8, 12, active=3, dtype=torch.float64)
    y = torch.randn((1, 12), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    feature = int(sae.encode(y)[0].eq(0).nonzero()[0])  # a feature off at y
    steps = torch.linspace(0, 4, 401, dtype=torch.float64)[:, None]
    path = y + steps * sae.w_enc[feature]
    c = code_response(sae, torch.full((len(path),), feature))(path)[:, feature]
    on = sae.encode(path)[:, feature] > 0
    first = int(on.nonzero()[0])  # it turns on along the path
    assert first > 0 and on[first:].all()
    before = c[:first]
    assert (before < 0).all() and (before.diff() > 0).all()
    assert -0.011 < float(before[-1]) < 0  # one step (0.01) from turning on
    torch.testing.assert_close(c[first:], sae.encode(path)[first:, feature])


def test_the_picture_of_an_sae_feature_raises_its_code_from_the_start_image():
    """A random TopK SAE on a small random CNN's hidden layer: from the same start image, the picture of every
    feature (on or off at the start) has a higher code, and features off at the start turn on."""
    fn = response_fn(small_cnn(), "act", "gap")
    start = torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y0 = fn(start)
    sae = tiny_sae(24, 16, active=4, seed=1)
    sae.b_dec = y0[0].clone()  # b_dec at the data's centre, as trained SAEs have it
    z0 = sae.encode(y0)[0]
    features = [*z0.nonzero()[:2, 0].tolist(), *z0.eq(0).nonzero()[:3, 0].tolist()]
    pics = atom_pictures(
        fn,
        SHAPE,
        sae,
        features,
        PicturesSpec(adam_steps=40, lr=0.1),
        seed=0,
        device=torch.device("cpu"),
        start_images=start.expand(len(features), -1, -1, -1),
    )
    assert (pics["code"] > z0[features] + 1e-3).all(), (pics["code"], z0[features])
    assert (pics["code"][2:] > 0).all()
    torch.testing.assert_close(pics["code"], sae.encode(fn(pics["images"]))[torch.arange(5), features])


def signed_color_net() -> Classifier:
    """A signed layer: y = the image's mean color minus 1/2, in [-1/2, 1/2]^3."""
    body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(body, torch.full((1, 3, 1, 1), 0.5), torch.ones(1, 3, 1, 1)).eval()


@pytest.mark.parametrize("k", [0, 1, 2])
def test_the_atom_target_drives_a_signed_layer_towards_plus_the_atom(k):
    """A signed atom d = (1, -1, 0) / sqrt(2) on a signed layer, started where d^T y < 0: S_x(y) with an odd k,
    (x^T y)^(k+1) / ||y||^k, grows as y moves to -d; the sign-kept objective drives y to +d at every k."""
    fn = response_fn(signed_color_net(), "1", "gap")
    atoms = unit(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
    start = torch.tensor([0.3, 0.6, 0.5])[None, :, None, None].expand(1, 3, 8, 8)
    assert float(fn(start) @ atoms[0]) < 0
    pics = atom_pictures(
        fn,
        (3, 8, 8),
        NMFDictionary(atoms, ridge=0.01),
        [0],
        PicturesSpec(adam_steps=150, target="atom", k=k, lr=0.1),
        seed=0,
        device=torch.device("cpu"),
        start_images=start,
    )
    assert float(pics["cosine"][0]) > 0.9, pics["responses"]
    assert pics["rank"].tolist() == [1] and float(pics["objective"][0]) > 0
