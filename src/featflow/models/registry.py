"""Model registry: small networks for the embedded default and torchvision architectures by name.

Every model is wrapped in :class:`Classifier`, which takes images in [0, 1] and normalizes them with stored
buffers, so that FV, noise robustness and frequency masks all work in pixel space. Layers are addressed by
their ``named_modules`` names inside ``Classifier.body`` (e.g. ``layer4.1`` for a ResNet).
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from featflow.config import OWN_ARCHS, ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Classifier(nn.Module):
    """Normalization, then the network ``body``.

    ``mean``/``std`` broadcast against one input: (1, C, 1, 1) for images, (1, d) for vectors.
    """

    def __init__(self, body: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a hidden layer ``act`` (the penultimate layer) and ``fc``.

    The hidden layer gives the network a non-linear read-out of pooled counts, which the planted ``parity``
    factor needs. ``smooth`` (arch ``smallcnn-smooth``) uses softplus (beta 4) and average pooling: a network
    differentiable everywhere, so that FV of its logits has stationary points, which inverse FV presupposes
    (a ReLU network's FV optima sit on kinks, where the gradient never vanishes).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, smooth: bool = False) -> None:
        super().__init__()

        def nonlinearity(inplace: bool = False) -> nn.Module:
            return nn.Softplus(beta=4) if smooth else nn.ReLU(inplace=inplace)

        def block(cin: int, cout: int, pool: bool) -> nn.Sequential:
            layers: list[nn.Module] = [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nonlinearity(True),
            ]
            if pool:
                layers.append(nn.AvgPool2d(2) if smooth else nn.MaxPool2d(2))
            return nn.Sequential(*layers)

        self.block1 = block(in_channels, width, pool=True)
        self.block2 = block(width, 2 * width, pool=True)
        self.block3 = block(2 * width, 4 * width, pool=False)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc1 = nn.Linear(4 * width, 4 * width)
        self.act = nonlinearity()
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.block3(self.block2(self.block1(x))))
        return self.fc(self.act(self.fc1(h)))


class ResBlock(nn.Module):
    """A basic residual block ``relu(main(x) + skip(x))``: ``main`` is conv-BN-ReLU-conv-BN, ``skip`` the identity
    or, where the shape changes, a strided 1 x 1 conv-BN projection (He et al. 2016, option B). Both paths are
    named modules, so hooks read each one's output separately (featflow.models.residual)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        projected = stride != 1 or cin != cout
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if projected
            else nn.Identity()
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A small residual network with SmallCNN's layer names: a conv stem and max pool (32 -> 16 px), three
    residual blocks ``block1`` (identity skip), ``block2``, ``block3`` (stride 2, projected skips), global
    average pooling, the hidden layer ``act`` and ``fc``. For the feature-flow analysis of the default run
    (Fel et al.: simple features ride the skip connections): torchvision's ResNets are too slow on 2 CPU cores."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.block1 = ResBlock(width, width, 1)
        self.block2 = ResBlock(width, 2 * width, 2)
        self.block3 = ResBlock(2 * width, 4 * width, 2)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc1 = nn.Linear(4 * width, 4 * width)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.block3(self.block2(self.block1(self.stem(x)))))
        return self.fc(self.act(self.fc1(h)))


class MLP(nn.Module):
    """Two hidden ReLU layers ``act1``, ``act2`` (penultimate) and a linear ``fc``; flattens its input."""

    def __init__(self, in_features: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, width)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act2(self.fc2(self.act1(self.fc1(self.flatten(x))))))


def _cifar_stem(arch: str, body: nn.Module, in_channels: int) -> None:
    """Replace the ImageNet stem (7x7 stride 2 + max pool) by a 3x3 stride-1 convolution for 32 x 32 inputs."""
    if arch.startswith(("resnet", "resnext", "wide_resnet")):
        body.conv1 = nn.Conv2d(in_channels, body.conv1.out_channels, 3, 1, 1, bias=False)
        body.maxpool = nn.Identity()
    elif arch.startswith("densenet"):
        body.features.conv0 = nn.Conv2d(in_channels, body.features.conv0.out_channels, 3, 1, 1, bias=False)
        body.features.pool0 = nn.Identity()
    elif arch == "googlenet":
        body.conv1.conv = nn.Conv2d(in_channels, body.conv1.conv.out_channels, 3, 1, 1, bias=False)
        body.maxpool1 = nn.Identity()
        body.maxpool2 = nn.Identity()


def _torchvision_body(spec: ModelSpec, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision  # here, not at the top: it pulls in torch._dynamo, ~1.5 CPU-s for every small-network job

    if spec.arch not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"models.arch '{spec.arch}': not a known architecture; expected {', '.join(OWN_ARCHS)} or one of "
            f"{difflib.get_close_matches(spec.arch, torchvision.models.list_models(), n=5)}"
        )
    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if spec.arch == "googlenet":  # torchvision's weights (ported from TF) expect its input re-scaling
        kwargs.update(aux_logits=False, init_weights=True, transform_input=spec.weights is not None)
    body = torchvision.models.get_model(spec.arch, **kwargs)
    if spec.cifar_stem:
        _cifar_stem(spec.arch, body, in_channels)
    return body


def build_model(
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> Classifier:
    """Build an untrained model for inputs of ``input_shape`` (C, H, W) or (d,).

    ``mean``/``std`` default to the ImageNet constants for 3-channel images and to 0/1 otherwise.
    """
    in_channels = input_shape[0]
    if spec.arch in ("smallcnn", "smallcnn-smooth"):
        body: nn.Module = SmallCNN(in_channels, num_classes, spec.width, smooth=spec.arch == "smallcnn-smooth")
    elif spec.arch == "smallresnet":
        body = SmallResNet(in_channels, num_classes, spec.width)
    elif spec.arch == "mlp":
        body = MLP(int(torch.tensor(input_shape).prod()), num_classes, spec.width)
    else:
        body = _torchvision_body(spec, in_channels, num_classes)
    is_rgb = len(input_shape) == 3 and in_channels == 3
    if mean is None:
        mean = torch.tensor(IMAGENET_MEAN) if is_rgb else torch.zeros(in_channels)
    if std is None:
        std = torch.tensor(IMAGENET_STD) if is_rgb else torch.ones(in_channels)
    shape = (1, in_channels, 1, 1) if len(input_shape) == 3 else (1, in_channels)
    return Classifier(body, mean.float().reshape(shape), std.float().reshape(shape))


def layer_names(model: Classifier) -> list[str]:
    """The addressable layer names of a model (``named_modules`` of its body)."""
    return [name for name, _ in model.body.named_modules() if name]


def resolve_layer(model: Classifier, name: str) -> nn.Module:
    """The module called ``name`` in the model body; a misspelled name fails with the closest names."""
    modules = dict(model.body.named_modules())
    if not name or name not in modules:
        close = difflib.get_close_matches(name, layer_names(model), n=5, cutoff=0.4)
        raise ValueError(f"layer '{name}' not found in the model; closest names: {close or layer_names(model)[:10]}")
    return modules[name]


def classifier_head(model: Classifier) -> nn.Linear:
    """The final linear classifier (the last ``nn.Linear`` of the body), whose input is the penultimate layer."""
    linears = [m for m in model.body.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear classifier head")
    return linears[-1]


def readout(model: Classifier, layer: str) -> nn.Module:
    """The logits as a function of ``layer``'s (pooled) output: the modules of the body that follow ``layer`` when it
    is one of the body's top-level children (featflow's own networks run their children in order: after ``fc1``
    come ``act`` and ``fc``), else the classifier head (the layer it reads). Which of these is right is checked on
    stored activations by :func:`check_readout`, not assumed."""
    children = list(model.body.named_children())
    names = [name for name, _ in children]
    if layer in names and names.index(layer) < len(names) - 1:
        return nn.Sequential(*(module for _, module in children[names.index(layer) + 1 :]))
    return classifier_head(model)


def check_readout(head: nn.Module, acts: torch.Tensor, logits: torch.Tensor, layer: str) -> None:
    """Refuse a readout that does not give the model's logits from the layer's stored activations: importance and
    the accuracy with reconstructions need the logits as a function of the dictionary layer."""
    try:
        with torch.no_grad():
            got = head(acts.to(next(head.parameters()))).to(logits)
        ok = got.shape == logits.shape and bool(torch.allclose(got, logits, rtol=1e-3, atol=1e-3 * logits.abs().max()))
    except (RuntimeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"complexity.dictionary.layer '{layer}': the logits are not a function of its pooled output by the modules "
            "that follow it; expected the penultimate layer or a later vector layer (e.g. fc1 or act of featflow's own "
            "networks)"
        )
