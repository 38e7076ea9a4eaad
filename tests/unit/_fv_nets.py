"""Small networks with known properties for the FV/IFV tests."""

from __future__ import annotations

import torch
from torch import nn

from featflow.fv.optimize import feature_fn, visualize
from featflow.fv.targets import make_targets
from featflow.models import Classifier


def conv_net(n_f: int = 8, seed: int = 0) -> Classifier:
    """Conv-ReLU-MaxPool-Conv on 3-channel images; layer "3" is the pre-activation output (n_f channels)."""
    torch.manual_seed(seed)
    body = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, n_f, 3, padding=1), nn.ReLU()
    )
    return Classifier(body, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).eval()


class CenteredLogits(nn.Module):
    """Logits whose weights sum to zero over the classes (1^T W = 0), so that the network can only move the
    logits against each other: (1, ..., 1) is in the co-kernel of every Jacobian (the softmax translation
    invariance of the paper's DenseNet); ``dead`` is a unit with zero weights, so e_dead is in it too."""

    def __init__(self, n_classes: int = 6, dead: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(32, n_classes)
        live = [i for i in range(n_classes) if i != dead]
        with torch.no_grad():
            self.fc.weight[dead] = 0.0
            self.fc.weight[live] -= self.fc.weight[live].mean(dim=0, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def centered_logits_net(n_classes: int = 6, dead: int = 2, seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(CenteredLogits(n_classes, dead), torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).eval()


def conv_realizations(n_targets: int, steps: int, seed: int = 0):
    """FV of ``n_targets`` sparse targets on ``conv_net`` (layer "3", n_f 8, rgb 16 x 16, k = 2).

    Returns the feature function, the targets (n_targets, 8), the realizations and the generator that drew them
    (its state follows the draws, so later draws stay reproducible).
    """
    torch.set_num_threads(1)
    fn = feature_fn(conv_net(n_f=8, seed=seed), "3", "maxpool_mean", None)
    gen = torch.Generator().manual_seed(seed)
    x = make_targets(n_targets, 8, False, gen)["targets"]
    real = visualize(
        fn, (3, 16, 16), x, 2, "rgb", adam_steps=steps, lbfgs_steps=steps, generator=gen, device=torch.device("cpu")
    )
    return fn, x, real, gen
