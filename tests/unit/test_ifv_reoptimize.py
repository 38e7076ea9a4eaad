"""SSIM agrees with scikit-image; re-optimization returns one score per realization and objective."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from featflow.fv.param import make_render
from featflow.ifv.reoptimize import random_objectives, reoptimize, ssim, unstable
from tests.unit._fv_nets import conv_realizations


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    gen = np.random.default_rng(0)
    a = gen.random((2, channels, 24, 20))
    b = np.clip(a + 0.2 * gen.standard_normal(a.shape), 0, 1)
    ours = ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = [
        structural_similarity(
            a[i],
            b[i],
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            K1=0.01,
            K2=0.03,
        )
        for i in range(2)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert torch.allclose(ssim(torch.from_numpy(a), torch.from_numpy(a)), torch.ones(2))


def test_ssim_rejects_small_images():
    with pytest.raises(ValueError, match="window"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_reoptimize_scores_and_stability():
    fn, x, real, gen = conv_realizations(4, 60)
    objectives = {"target": x, "random": random_objectives(4, 8, gen)}
    scores = reoptimize(fn, make_render("rgb", (3, 16, 16)), real.params, objectives, 2, 40, device=torch.device("cpu"))
    assert set(scores) == {"target", "random"} and scores["target"].shape == (4,)
    # a converged realization barely moves under its own objective, and more under a random one
    assert scores["target"].median() > 0.9
    assert scores["random"].median() < scores["target"].median()
    assert unstable(torch.tensor([0.5, 0.9])).tolist() == [True, False]
