"""Model registry, layer hooks, checkpoints, training."""

from __future__ import annotations

import pytest
import torch

from featflow.config import ModelSpec
from featflow.models import (
    build_model,
    capture,
    classifier_head,
    forward_to,
    load_checkpoint,
    resolve_layer,
    save_checkpoint,
)
from featflow.models.train import channel_stats, parameter_groups


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("smallcnn", (3, 32, 32)),
        ("mlp", (20,)),
        ("resnet18", (3, 32, 32)),
        ("densenet121", (3, 32, 32)),
        ("googlenet", (3, 32, 32)),
    ],
)
def test_registry_builds_working_classifiers(arch, shape):
    model = build_model(ModelSpec(arch=arch, dataset="d", width=8), shape, 5).eval()
    with torch.no_grad():
        assert model(torch.rand(2, *shape)).shape == (2, 5)
    assert classifier_head(model).out_features == 5


def test_cifar_stem_keeps_resolution():
    model = build_model(ModelSpec(arch="resnet18", dataset="d"), (3, 32, 32), 10).eval()
    out = forward_to(model, torch.rand(1, 3, 32, 32), "layer1")
    assert out.shape[-1] == 32  # no stride-2 stem, no max pool


def test_unknown_arch_and_misspelled_layer_fail_with_suggestions():
    with pytest.raises(ValueError, match="resnet18"):
        build_model(ModelSpec(arch="resnet81", dataset="d"), (3, 32, 32), 10)
    model = build_model(ModelSpec(arch="smallcnn", dataset="d", width=4), (3, 32, 32), 3)
    with pytest.raises(ValueError, match=r"layer 'blok2' not found.*'block2'"):
        resolve_layer(model, "blok2")


def test_hooks_are_removed_even_after_an_exception():
    model = build_model(ModelSpec(arch="smallcnn", dataset="d", width=4), (3, 32, 32), 3)
    with pytest.raises(RuntimeError):
        with capture(model, ["block1", "act"]):
            raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in model.modules())


def test_capture_matches_manual_forward_and_forward_to_stops_early():
    model = build_model(ModelSpec(arch="smallcnn", dataset="d", width=4), (3, 32, 32), 3).eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad(), capture(model, ["block2", "act"]) as out:
        logits = model(x)
        body = model.body
        h2 = body.block2(body.block1((x - model.mean) / model.std))
        torch.testing.assert_close(out["block2"], h2)
        torch.testing.assert_close(body.fc(out["act"]), logits)
    calls = []
    model.body.block3.register_forward_hook(lambda *a: calls.append(1))
    torch.testing.assert_close(forward_to(model, x, "block2"), h2)
    assert calls == []  # nothing after block2 ran


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    spec = ModelSpec(arch="smallcnn", dataset="d", width=4)
    x = torch.rand(8, 3, 32, 32)
    mean, std = channel_stats(x)
    model = build_model(spec, (3, 32, 32), 3, mean, std).eval()
    save_checkpoint(tmp_path / "m.pt", model, spec, (3, 32, 32), 3, {"test_acc": 0.5})
    loaded, payload = load_checkpoint(tmp_path / "m.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert payload["meta"]["test_acc"] == 0.5
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a featflow checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_augmentations_draw_per_image():
    from featflow.models.train import augmentation

    torch.manual_seed(0)
    images = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)
    out = torch.stack([augmentation("rotate")(image) for image in images])
    assert len({tuple(o.flatten()[:50].tolist()) for o in out}) > 1
    with pytest.raises(ValueError, match="models.train.augment 'blur'"):
        augmentation("blur")


def test_head_weight_decay_applies_to_the_head_weights_only():
    """One SGD step on a zero loss is pure decay: the head's weights shrink by lr * head_weight_decay, every
    other parameter (the head's bias included) by lr * weight_decay."""
    spec = ModelSpec.from_dict(
        {"arch": "smallcnn", "dataset": "d", "width": 4, "train": {"weight_decay": 0.01, "head_weight_decay": 0.3}}
    )
    model = build_model(spec, (3, 8, 8), 5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt = torch.optim.SGD(parameter_groups(model, spec.train), lr=0.5, momentum=0.0)
    (0.0 * sum(p.sum() for p in model.parameters())).backward()
    opt.step()
    for name, p in model.named_parameters():
        decay = 0.3 if name == "body.fc.weight" else 0.01
        torch.testing.assert_close(p.detach(), before[name] * (1 - 0.5 * decay))
    groups = parameter_groups(model, ModelSpec.from_dict({"arch": "smallcnn", "dataset": "d"}).train)
    assert [g["weight_decay"] for g in groups] == [5e-4, 5e-4]  # unset: the body's decay everywhere
