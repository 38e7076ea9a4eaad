"""Noise sensitivity has the analytic value for a linear encoder."""

import torch

from featflow.metrics.robustness import sensitivity


def test_linear_encoder_sensitivity() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 2, 2, generator=gen, dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)  # (4 pixels, 2)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ w

    sens = sensitivity(images, encode, [0.0, 0.1], draws=400, generator=gen)
    clean_var = encode(images).var(0)
    expected = 0.1**2 * (w**2).sum(0) / clean_var  # Var over draws of <w, x + e> = sigma^2 ||w||^2
    assert torch.all(sens[0] == 0)
    torch.testing.assert_close(sens[1], expected, rtol=0.1, atol=0)


def test_accuracy_under_noise_and_the_chance_flag() -> None:
    """A classifier reading the sign of the mean pixel: exact on clean inputs, at chance under huge noise; the
    flag marks only the level where it is at chance."""
    from featflow.metrics.robustness import at_chance, noisy_accuracy

    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(200) % 2
    images = (labels.double() * 2 - 1)[:, None, None, None] * 0.5 + torch.zeros(200, 1, 4, 4, dtype=torch.float64)

    def classify(x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        return torch.stack([-m, m], 1)

    acc = noisy_accuracy(images, labels, classify, [0.0, 0.1, 100.0], draws=8, generator=gen)
    assert acc[0] == 1.0 and acc[1] == 1.0 and abs(float(acc[2]) - 0.5) < 0.06
    assert at_chance(acc.tolist(), labels) == [False, False, True]
