"""Importance equals captum's attribution of the codes (the reference library for gradient x input)."""

import torch
from captum.attr import LayerGradientXActivation

from featflow.metrics.importance import importance


class Decoded(torch.nn.Module):
    """Codes -> z D (an identity layer to attribute to) -> the linear head."""

    def __init__(self, atoms: torch.Tensor, head: torch.nn.Module) -> None:
        super().__init__()
        self.codes = torch.nn.Identity()
        self.atoms, self.head = atoms, head

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.codes(z) @ self.atoms)


def test_matches_captum_layer_gradient_x_activation() -> None:
    gen = torch.Generator().manual_seed(1)
    n, k, d, c = 64, 16, 8, 5
    z = torch.rand(n, k, generator=gen, dtype=torch.float64)
    atoms = torch.rand(k, d, generator=gen, dtype=torch.float64)
    head = torch.nn.Linear(d, c).double()
    model = Decoded(atoms, head)
    predicted = model(z).argmax(1)
    attribution = LayerGradientXActivation(model, model.codes).attribute(z, target=predicted)
    signed, absolute = importance(z, atoms, head.weight.detach()[predicted])
    torch.testing.assert_close(signed, attribution.mean(0), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(absolute, attribution.abs().mean(0), rtol=1e-12, atol=1e-14)


def test_through_a_nonlinear_readout_matches_captum_at_the_reconstruction() -> None:
    """A dictionary before a ReLU (fc1 of featflow's networks): Gamma is the gradient x input of the codes in the
    network that reads ``z D``, the logit's gradient taken at the reconstruction (not at the activation)."""
    from featflow.complexity.importance import logit_gradients

    gen = torch.Generator().manual_seed(2)
    n, k, d, c = 64, 16, 8, 5
    z = torch.rand(n, k, generator=gen, dtype=torch.float64)
    atoms = torch.randn(k, d, generator=gen, dtype=torch.float64)  # signed atoms: the ReLU cuts some directions
    head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(d, c)).double()
    model = Decoded(atoms, head)
    predicted = model(z).argmax(1)
    attribution = LayerGradientXActivation(model, model.codes).attribute(z, target=predicted)
    signed, absolute = importance(z, atoms, logit_gradients(head, z @ atoms, predicted))
    torch.testing.assert_close(signed, attribution.mean(0), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(absolute, attribution.abs().mean(0), rtol=1e-12, atol=1e-14)
    # the class weights alone (the linear closed form) would be wrong here
    linear = importance(z, atoms, head[1].weight.detach()[predicted])[0]
    assert not torch.allclose(linear, signed)
