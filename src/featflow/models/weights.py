"""Torchvision weights by name (``IMAGENET1K_V2``, ``DEFAULT``, ``ResNet50_Weights.IMAGENET1K_V1``), read from the
local torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file of Weights.url>``, where torchvision itself keeps them.

A missing file is a config error naming the file and where to put it; torchvision downloads it only when the
model opts in (``models.<m>.download: true``). The weights' own preprocessing comes with them: mean/std (the
:class:`~featflow.models.registry.Classifier` buffers) and resize/crop (:func:`preprocessing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from featflow.config import ModelSpec, is_weights_name

if TYPE_CHECKING:  # torchvision is imported where it is used: it pulls in torch._dynamo (~1.5 CPU-s a job)
    from torchvision.models import WeightsEnum


def resolve(arch: str, name: str) -> WeightsEnum:
    """The weights ``name`` of architecture ``arch``; an unknown name lists the ones that exist."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except ValueError as err:
        raise ValueError(f"'{name}' names torchvision weights, but '{arch}' has none ({err})") from err
    member = name.rsplit(".", 1)[-1]
    if "." in name and name.split(".")[0] != enum.__name__:
        raise ValueError(f"'{name}' are not weights of '{arch}'; expected {enum.__name__}.<name>")
    if member not in enum.__members__:
        raise ValueError(f"'{name}' is not one of {arch}'s weights; expected one of {list(enum.__members__)}")
    return enum[member]


def cache_file(weights: WeightsEnum) -> Path:
    """Where torchvision looks for ``weights`` before downloading: the hub cache's checkpoints folder."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def problem(model: Mapping[str, Any], image_size: int | None, num_classes: int | None, check_file: bool) -> str | None:
    """What stops the named weights of a validated ``models.<m>`` entry from loading on images of ``image_size``
    with ``num_classes`` classes (None: not known), and, with ``check_file``, from the hub cache; None if nothing."""
    try:
        weights = resolve(model["arch"], model["weights"])
    except ValueError as err:
        return str(err)
    crop = weights.transforms().crop_size[0]
    categories = len(weights.meta["categories"])
    if model.get("cifar_stem") and model["arch"].startswith(("resnet", "resnext", "wide_resnet", "densenet", "goog")):
        return f"{weights} are for the ImageNet stem; set cifar_stem: false"
    if image_size is not None and image_size != crop:
        return f"{weights} take {crop} x {crop} crops; set the data set's image_size to {crop}"
    if num_classes is not None and num_classes != categories:
        return f"{weights} have {categories} classes, the data set has {num_classes}; expected the same classes"
    if check_file and not model.get("download") and not cache_file(weights).is_file():
        return (
            f"{weights}: {cache_file(weights)} not found (downloads are off); place torchvision's file "
            f"{cache_file(weights).name} ({weights.url}) there, set TORCH_HOME to the folder holding hub/, "
            "or set download: true"
        )
    return None


def load_state(spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The body state_dict of the named weights, loaded by torchvision's own builder (which remaps old key
    names, e.g. DenseNet's, and drops GoogLeNet's auxiliary heads) from the cache, downloading only when
    ``spec.download``."""
    import torchvision

    weights = resolve(spec.arch, str(spec.weights))
    if not spec.download and not cache_file(weights).is_file():
        raise FileNotFoundError(f"models.weights: {problem(spec.to_dict(), None, None, check_file=True)}")
    network = torchvision.models.get_model(spec.arch, weights=weights, progress=False)
    return network.state_dict()


def normalization(spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
    """Mean and std the named weights were trained with (None, None for other models)."""
    if not is_weights_name(spec.weights):
        return None, None
    transforms = resolve(spec.arch, str(spec.weights)).transforms()
    return torch.tensor(transforms.mean), torch.tensor(transforms.std)


def preprocessing(spec: ModelSpec, image_size: int) -> tuple[int, int, Any]:
    """(resize, crop, interpolation) of images read from a folder: the named weights' own, else a resize of the
    short side to ``image_size`` and a center crop of that size."""
    from torchvision.transforms import InterpolationMode

    if not is_weights_name(spec.weights):
        return image_size, image_size, InterpolationMode.BILINEAR
    transforms = resolve(spec.arch, str(spec.weights)).transforms()
    return transforms.resize_size[0], transforms.crop_size[0], transforms.interpolation
