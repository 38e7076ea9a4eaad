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
