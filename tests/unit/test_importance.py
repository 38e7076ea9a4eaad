"""Closed-form gradient x input equals autograd through decoder and linear head."""

import torch

from featflow.metrics.importance import importance


def test_matches_autograd_gradient_x_input() -> None:
    gen = torch.Generator().manual_seed(0)
    n, k, d, c = 50, 12, 6, 4
    z = torch.rand(n, k, generator=gen, dtype=torch.float64).requires_grad_(True)
    atoms = torch.rand(k, d, generator=gen, dtype=torch.float64)
    head = torch.nn.Linear(d, c).double()
    logits = head(z @ atoms)
    predicted = logits.argmax(1)
    grad = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), z)[0]
    gxi = (grad * z).detach()  # per-sample gradient x input
    signed, absolute = importance(z.detach(), atoms, head.weight.detach()[predicted])
    torch.testing.assert_close(signed, gxi.mean(0))
    torch.testing.assert_close(absolute, gxi.abs().mean(0))
