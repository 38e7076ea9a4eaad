"""Noise sensitivity has the analytic value for a linear encoder."""

import torch

from featflow.metrics.robustness import Noise, sensitivity


def test_linear_encoder_sensitivity() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 2, 2, generator=gen, dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)  # (4 pixels, 2)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ w

    sens = torch.from_numpy(sensitivity(images, encode, [0.0, 0.1], draws=400, noise=Noise(0)))
    clean_var = encode(images).var(0)
    expected = 0.1**2 * (w**2).sum(0) / clean_var  # Var over draws of <w, x + e> = sigma^2 ||w||^2
    assert torch.all(sens[0] == 0)
    torch.testing.assert_close(sens[1], expected, rtol=0.1, atol=0)


def test_accuracy_under_noise_and_the_chance_flag() -> None:
    """A classifier reading the sign of the mean pixel: exact on clean inputs, at chance under huge noise; the
    flag marks only the level where it is at chance."""
    from featflow.metrics.robustness import at_chance, noisy_accuracy

    labels = torch.arange(200) % 2
    images = (labels.double() * 2 - 1)[:, None, None, None] * 0.5 + torch.zeros(200, 1, 4, 4, dtype=torch.float64)

    def classify(x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        return torch.stack([-m, m], 1)

    acc = noisy_accuracy(images, labels, classify, [0.0, 0.1, 100.0], draws=8, noise=Noise(1))
    assert acc[0] == 1.0 and acc[1] == 1.0 and abs(float(acc[2]) - 0.5) < 0.06
    assert at_chance(acc.tolist(), torch.bincount(labels).tolist()) == [False, False, True]


def test_shards_of_the_images_merge_into_the_whole() -> None:
    """Issue 16.5: the noise of an image depends on its index and the seed only, and the statistics are sums, so
    any split of the images into contiguous shards merges into the result of all images at once (float64)."""
    from featflow.metrics.robustness import NOISE_BLOCK, noisy_correct, sensitivity_parts

    gen = torch.Generator().manual_seed(3)
    images = torch.rand(53, 1, 3, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    labels = (images.flatten(1).mean(1) > 0.5).long()

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.flatten(1) @ w)

    def classify(x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1) - 0.5
        return torch.stack([-m, m], 1)

    sigmas, whole = [0.05, 0.3], sensitivity_parts(images, encode, [0.05, 0.3], 4, Noise(7), batch_size=12)
    cuts = [0, 5, NOISE_BLOCK + 3, 40, 53]  # boundaries inside noise blocks and off the batch size
    parts = [
        sensitivity_parts(images[a:b], encode, sigmas, 4, Noise(7, a), batch_size=8)
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.n == 53
    torch.testing.assert_close(torch.from_numpy(merged.sensitivity()), torch.from_numpy(whole.sensitivity()))
    correct = sum(
        noisy_correct(images[a:b], labels[a:b], classify, sigmas, 4, Noise(7, a), batch_size=8)
        for a, b in zip(cuts, cuts[1:], strict=False)
    )
    assert (correct == noisy_correct(images, labels, classify, sigmas, 4, Noise(7), batch_size=12)).all()
    other = sensitivity_parts(images, encode, sigmas, 4, Noise(8), batch_size=12).sensitivity()
    assert not torch.allclose(torch.from_numpy(other), torch.from_numpy(whole.sensitivity()))  # the seed matters


def test_noise_draws_each_block_once_with_the_same_values(monkeypatch) -> None:
    """Batches of one image at a time draw each 16-image block once (the old draw regenerated the block per
    batch), and every image gets the noise of its block's generator, seeded from (seed, level, block)."""
    import numpy as np

    from featflow.metrics.robustness import NOISE_BLOCK

    images = torch.zeros(40, 2, 3)
    noise, calls, real = Noise(5, first=3), [], torch.randn
    monkeypatch.setattr(torch, "randn", lambda *a, **k: calls.append(1) or real(*a, **k))
    drawn = torch.cat([noise.draw(images[i : i + 1], 4, 1, i) for i in range(40)])
    assert len(calls) == 3  # images 3..42: blocks 0, 1, 2
    monkeypatch.setattr(torch, "randn", real)
    for i in (0, 12, 13, 39):
        block, offset = divmod(3 + i, NOISE_BLOCK)
        state = int(np.random.SeedSequence([5, 1, block]).generate_state(1)[0])
        expected = torch.randn((NOISE_BLOCK, 4, 2, 3), generator=torch.Generator().manual_seed(state))[offset]
        assert torch.equal(drawn[i], expected)
    assert torch.equal(drawn, Noise(5, first=3).draw(images, 4, 1, 0))
