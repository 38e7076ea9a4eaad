"""Pictures of features (featflow.fv.atoms): FV of an atom's direction drives the layer's response along it, far
more than noise does (on a layer with a known answer, the picture of a color's atom is that color); one batch gives
each feature's picture alone; the features drawn are the simplest, the most complex and the requested ones; the
response is pooled as the experiment's activations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from featflow.activations import pool
from featflow.config import ModelSpec
from featflow.fv.atoms import (
    PicturesSpec,
    atom_pictures,
    baseline_cosine,
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
        atoms = fn(COLORS[:, :, None, None].expand(-1, *SHAPE))
    spec = PicturesSpec(adam_steps=150, k=2)
    features = [3, 7, 11, 19, 23, 29]
    pics = atom_pictures(fn, SHAPE, atoms, features, spec, seed=0, device=torch.device("cpu"))
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
    pics = atom_pictures(fn, SHAPE, atoms, features, PicturesSpec(adam_steps=150, k=0), 0, torch.device("cpu"))
    torch.testing.assert_close(pics["images"].mean(dim=(2, 3)), COLORS, atol=0.05, rtol=0)


def test_the_optimizer_raises_the_objective_from_its_start(setup):
    fn, atoms, features, _, pics = setup
    start = atom_pictures(fn, SHAPE, atoms, features, PicturesSpec(adam_steps=0), 0, torch.device("cpu"))
    assert (pics["objective"] > 2 * start["objective"]).all()
    assert (pics["cosine"] > start["cosine"]).all()


def test_one_batch_gives_each_features_picture_alone():
    """Adam is per coordinate and each start is drawn from (seed, id): batching changes nothing, and a feature's
    picture does not depend on the features drawn beside it (or on their order). On a small CNN's hidden layer."""
    fn = response_fn(small_cnn(), "act", "gap")
    gen = torch.Generator().manual_seed(0)
    atoms = torch.rand((4, 16), generator=gen)
    spec, cpu = PicturesSpec(adam_steps=40), torch.device("cpu")
    pics = atom_pictures(fn, SHAPE, atoms, [3, 7, 11, 19], spec, seed=0, device=cpu)
    for row, feature in [(0, 3), (2, 11)]:
        alone = atom_pictures(fn, SHAPE, atoms[row : row + 1], [feature], spec, seed=0, device=cpu)
        torch.testing.assert_close(alone["images"][0], pics["images"][row], atol=1e-4, rtol=0)
        torch.testing.assert_close(alone["cosine"][0], pics["cosine"][row], atol=1e-5, rtol=0)
    flipped = atom_pictures(fn, SHAPE, atoms.flip(0), [19, 11, 7, 3], spec, seed=0, device=cpu)
    torch.testing.assert_close(flipped["images"].flip(0), pics["images"], atol=1e-4, rtol=0)
    other_seed = atom_pictures(fn, SHAPE, atoms[:1], [3], spec, seed=1, device=cpu)
    assert not torch.allclose(other_seed["images"][0], pics["images"][0], atol=1e-3)


def test_the_fft_parametrizations_reach_the_colors_too(setup):
    fn, atoms, features, _, _ = setup
    for kind in ("fft", "fft_energy"):
        pics = atom_pictures(
            fn,
            SHAPE,
            atoms,
            features,
            PicturesSpec(parametrization=kind, lr=1.0, adam_steps=150),
            0,
            torch.device("cpu"),
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
