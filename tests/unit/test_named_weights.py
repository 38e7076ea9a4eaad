"""Weights a researcher already has: torchvision weights by name from the local hub cache, plain state_dicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from torchvision.models import ResNet18_Weights

from featflow import store
from featflow.activations import extract_to_h5
from featflow.config import ActivationsSpec, ConfigError, DatasetSpec, ModelSpec
from featflow.data import batches, write_dataset
from featflow.models import build_model, load_checkpoint
from featflow.models import weights as named
from featflow.models.train import _load_weights, train_model
from featflow.names import checked
from tests.folder_data import write_imagefolder

CACHED = "resnet18-f37072fd.pth"  # the file name of ResNet18_Weights.IMAGENET1K_V1.url


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME whose hub cache holds random ResNet18 ImageNet-shaped weights under the real file name."""
    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), home / "hub" / "checkpoints" / CACHED)
    return home


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder tree with ImageNet's 1,000 classes, one small image per class and split."""
    return write_imagefolder(tmp_path_factory.mktemp("imagenet"), classes=1000, per_class=1, size=(20, 24))


def _spec(weights: str, **extra: object) -> ModelSpec:
    return ModelSpec(arch="resnet18", dataset="imagenet", cifar_stem=False, weights=weights, **extra)


def test_named_weights_load_from_the_hub_cache_with_their_preprocessing(hub: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(hub))
    spec = _spec("IMAGENET1K_V1")
    assert named.cache_file(ResNet18_Weights.IMAGENET1K_V1) == hub / "hub" / "checkpoints" / CACHED
    model = build_model(spec, (3, 224, 224), 1000, *named.normalization(spec))
    _load_weights(model, spec)
    reference = torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).eval()  # same cache file
    transforms = ResNet18_Weights.IMAGENET1K_V1.transforms()
    x = torch.rand(2, 3, 64, 64)
    normalized = (x - torch.tensor(transforms.mean)[:, None, None]) / torch.tensor(transforms.std)[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(normalized), rtol=1e-4, atol=1e-5)
    assert named.preprocessing(spec, 224)[:2] == (256, 224)
    assert named.preprocessing(_spec("ResNet18_Weights.DEFAULT"), 224)[:2] == (256, 224)
    assert named.preprocessing(ModelSpec(arch="resnet18", dataset="d"), 40)[:2] == (40, 40)


def test_plain_torchvision_state_dicts_load_into_the_body(tmp_path: Path) -> None:
    torch.manual_seed(2)
    for arch, kwargs in (("resnet18", {}), ("googlenet", {"aux_logits": False, "init_weights": True})):
        if arch == "googlenet":  # what googlenet(weights=...) builds: TF input re-scaling, no auxiliary heads
            kwargs["transform_input"] = True
        source = torchvision.models.get_model(arch, num_classes=10, **kwargs).eval()
        torch.save(source.state_dict(), tmp_path / f"{arch}.pth")
        spec = ModelSpec(arch=arch, dataset="d", cifar_stem=False, weights=str(tmp_path / f"{arch}.pth"))
        model = build_model(spec, (3, 64, 64), 10)
        _load_weights(model, spec)
        x = torch.rand(2, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(x), source((x - model.mean) / model.std), rtol=1e-4, atol=1e-5)
    stem = ModelSpec(arch="resnet18", dataset="d", cifar_stem=True, weights=str(tmp_path / "resnet18.pth"))
    with pytest.raises(ValueError, match="(?s)does not fit the architecture.*conv1.weight"):
        _load_weights(build_model(stem, (3, 32, 32), 10), stem)


def _config(root: Path, **model: object) -> dict:
    return {
        "datasets": {"imagenet": {"kind": "imagefolder", "path": str(root), "image_size": 224}},
        "models": {"m": {"arch": "resnet18", "dataset": "imagenet", "cifar_stem": False, **model}},
        "experiments": {},
    }


def test_missing_named_weights_fail_at_validation_naming_the_file(
    hub: Path, imagenet: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    where = str(tmp_path / "empty" / "hub" / "checkpoints" / CACHED)
    with pytest.raises(ConfigError, match=r"config key 'models\.m\.weights': .*not found") as err:
        checked(_config(imagenet, weights="IMAGENET1K_V1"))
    assert where in str(err.value) and "download: true" in str(err.value)
    checked(_config(imagenet, weights="IMAGENET1K_V1", download=True))  # opted in
    for bad, message in (
        ({"weights": "IMAGENET1K_V9"}, r"expected one of \['IMAGENET1K_V1', 'DEFAULT'\]"),
        ({"weights": "ResNet50_Weights.DEFAULT"}, "not weights of 'resnet18'"),
        ({"weights": "DEFAULT", "cifar_stem": True}, "set cifar_stem: false"),
    ):
        with pytest.raises(ConfigError, match=message):
            checked(_config(imagenet, **bad))
    monkeypatch.setenv("TORCH_HOME", str(hub))
    checked(_config(imagenet, weights="DEFAULT"))
    small = _config(imagenet, weights="DEFAULT")
    small["datasets"]["imagenet"]["image_size"] = 64
    with pytest.raises(ConfigError, match="take 224 x 224 crops; set the data set's image_size to 224"):
        checked(small)
    gray = _config(imagenet, weights="DEFAULT")
    gray["datasets"]["imagenet"]["grayscale"] = True
    with pytest.raises(ConfigError, match=r"take RGB images.*\(1, 224, 224\)"):
        checked(gray)


def test_a_named_weights_model_runs_train_and_activations_at_224(
    hub: Path, imagenet: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(hub))
    data = tmp_path / "imagenet.h5"
    write_dataset(DatasetSpec(kind="imagefolder", path=str(imagenet), n_train=4, n_test=6, image_size=224), data, {})
    result = train_model(
        _spec("IMAGENET1K_V1"), data, tmp_path / "m.pt", device=torch.device("cpu"), attrs={}, workers=2
    )
    assert 0 <= result["test_acc"] <= 1
    spec = ActivationsSpec(batch_size=4, workers=2)
    extract_to_h5(
        tmp_path / "m.pt",
        data,
        "test",
        ["layer4", "avgpool"],
        spec,
        tmp_path / "a.h5",
        device=torch.device("cpu"),
        attrs={},
    )
    acts = store.read_h5(tmp_path / "a.h5", "activations")
    assert acts["layers"]["avgpool"].shape == (6, 512) and acts["logits"].shape == (6, 1000)
    model, _ = load_checkpoint(tmp_path / "m.pt")
    files = store.read_h5(data, "dataset")["test"]["files"]
    transforms = ResNet18_Weights.IMAGENET1K_V1.transforms()  # the weights' own: resize 256, crop 224, normalize
    reference = torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).eval()
    images = torch.stack([transforms(Image.open(imagenet / "val" / f).convert("RGB")) for f in files])
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(acts["logits"]), reference(images), rtol=1e-3, atol=1e-4)
    first = next(batches(data, "test", 6, preprocess=named.preprocessing(_spec("IMAGENET1K_V1"), 224)))
    torch.testing.assert_close((first.x - model.mean) / model.std, images, rtol=1e-5, atol=1e-5)
