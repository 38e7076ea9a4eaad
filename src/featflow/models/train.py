"""Training (SGD with momentum, cosine schedule) or loading local weights, then a checkpoint with accuracies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from featflow.config import ModelSpec, TrainSpec
from featflow.data import LoadedSplit, batches, describe, load_split
from featflow.models import weights
from featflow.models.attacks import pgd_linf
from featflow.models.checkpoint import FORMAT, LEGACY, save_checkpoint, torch_file, verify
from featflow.models.registry import Classifier, build_model, classifier_head

log = logging.getLogger(__name__)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of images (N, C, H, W), or per-feature of vectors (N, d)."""
    dims = (0, 2, 3) if x.ndim == 4 else (0,)
    return x.mean(dim=dims), x.std(dim=dims).clamp_min(1e-6)


def augmentation(name: str) -> nn.Module | None:
    """The torchvision transform for a training augmentation name (None for ``none``)."""
    from torchvision.transforms import v2

    transforms = {
        "none": None,
        "flip": v2.RandomHorizontalFlip(),
        # Karantzas et al. 2022: scale 0.5-1.5, translation up to 0.4 of the side, rotation up to 180 degrees
        "scale": v2.RandomAffine(degrees=0, scale=(0.5, 1.5)),
        "translate": v2.RandomAffine(degrees=0, translate=(0.4, 0.4)),
        "rotate": v2.RandomRotation(180),
        "pgd": None,  # adversarial examples need the model: made in fit()
    }
    if name not in transforms:
        raise ValueError(f"models.train.augment '{name}': expected one of {sorted(transforms)}")
    return transforms[name]


@torch.no_grad()
def accuracy(model: nn.Module, split: LoadedSplit, device: torch.device, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on a split, evaluated in batches under no_grad."""
    model.eval()
    correct = 0
    for start in range(0, split.x.shape[0], batch_size):
        xb = split.x[start : start + batch_size].to(device)
        correct += (model(xb).argmax(1).cpu() == split.y[start : start + batch_size]).sum().item()
    return correct / max(1, split.x.shape[0])


def parameter_groups(model: Classifier, cfg: TrainSpec) -> list[dict[str, Any]]:
    """SGD parameter groups: the classifier head's weight matrix decays with ``head_weight_decay`` (when set),
    every other parameter with ``weight_decay``."""
    head = classifier_head(model).weight
    body = [p for p in model.parameters() if p is not head]
    head_decay = cfg.weight_decay if cfg.head_weight_decay is None else cfg.head_weight_decay
    return [{"params": body, "weight_decay": cfg.weight_decay}, {"params": [head], "weight_decay": head_decay}]


def fit(
    model: Classifier,
    train: LoadedSplit,
    test: LoadedSplit,
    spec: ModelSpec,
    device: torch.device,
    generator: torch.Generator,
    stop_after: int | None = None,
    on_epoch: Callable[[int, Classifier], None] | None = None,
) -> list[dict[str, float]]:
    """Train in place; returns the per-epoch history (loss, train and test accuracy, learning rate).

    ``stop_after`` = e stops after e of the schedule's ``train.epochs`` epochs: the learning-rate schedule
    (cosine over all epochs), the shuffling and every other draw are those of the full run, so the model is
    exactly the full run's after e epochs (a checkpoint over training, not a shorter run). ``on_epoch(epoch,
    model)`` is called after each epoch.

    With augment ``pgd`` the first ``pgd_warmup`` epochs are clean, then every batch is replaced by its PGD
    adversarials (a warm-start curriculum: a small budget of PGD epochs from scratch never learns what the
    standard network learns, which would confound robustness with a failed network).
    """
    cfg = spec.train
    epochs = cfg.epochs if stop_after is None else stop_after
    if not 0 <= epochs <= cfg.epochs:
        raise ValueError(f"fit: stop_after {stop_after} outside the schedule's 0..{cfg.epochs} epochs")
    n = train.x.shape[0]
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    opt = torch.optim.SGD(parameter_groups(model, cfg), lr=cfg.lr, momentum=cfg.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    augment = augmentation(cfg.augment)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in tqdm(range(epochs), desc="train", unit="epoch"):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            xb, yb = train.x[idx], train.y[idx]
            if augment is not None:  # v2 transforms draw one set of parameters per call: call them per image
                xb = torch.stack([augment(image) for image in xb])
            if cfg.augment == "pgd" and epoch >= cfg.pgd_warmup:  # PGD after the clean warm-up; BatchNorm frozen
                model.eval()
                xb = pgd_linf(
                    model,
                    xb.to(device),
                    yb.to(device),
                    cfg.pgd_eps,
                    cfg.pgd_steps,
                    step_size=cfg.pgd_step * cfg.pgd_eps,
                    generator=generator,
                )
                model.train()
            loss = loss_fn(model(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.numel()
        row = {
            "epoch": epoch + 1,
            "loss": total / n,
            "lr": sched.get_last_lr()[0],
            "train_acc": accuracy(model, train, device),
            "test_acc": accuracy(model, test, device),
        }
        log.info("epoch %(epoch)d loss %(loss).4f train_acc %(train_acc).4f test_acc %(test_acc).4f", row)
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
    return history


def _load_weights(model: Classifier, spec: ModelSpec) -> None:
    """Load named torchvision weights from the hub cache, a featflow checkpoint, or a plain state_dict of the
    network body (what ``torchvision.models.X(weights=...).state_dict()`` saves)."""
    if weights.is_weights_name(spec.weights):
        model.body.load_state_dict(weights.load_state(spec))
        return
    path = str(spec.weights)
    state = torch_file(path, "config key 'models.<name>.weights' must name a state_dict or featflow checkpoint")
    if isinstance(state, dict) and state.get("format") in (FORMAT, *LEGACY):
        if state["format"] == FORMAT:  # a featflow checkpoint as weights: its content hash is checked too
            verify(path, state)
        model.load_state_dict(state["state_dict"])
        return
    try:
        missing, unexpected = model.body.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a size mismatch: another class count or stem
        raise ValueError(f"models.weights '{path}': state_dict does not fit the architecture: {err}") from err
    if missing or unexpected:
        raise ValueError(
            f"models.weights '{path}': state_dict does not fit the architecture; "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


@torch.no_grad()
def _accuracy_of(
    model: nn.Module, data_path: str | Path, split: str, device: torch.device, workers: int, preprocess: Any
) -> float:
    """Top-1 accuracy on a split read batch by batch (folder data decoded with the model's ``preprocess``)."""
    model.eval()
    correct = total = 0
    for batch in batches(data_path, split, 256, workers=workers, preprocess=preprocess):
        correct += (model(batch.x.to(device)).argmax(1).cpu() == batch.y).sum().item()
        total += batch.y.numel()
    return correct / max(1, total)


def train_model(
    spec: ModelSpec,
    data_path: str | Path,
    out_path: str | Path,
    *,
    device: torch.device,
    attrs: dict[str, Any],
    workers: int = 0,
    epoch: int | None = None,
) -> dict[str, float]:
    """Train ``spec`` on the data set file (or load ``spec.weights``), then write the checkpoint.

    Returns the final train and test accuracy, which also go to the log and the checkpoint; they are read
    batch by batch (``workers`` DataLoader processes for folder data), so loaded weights never need the
    splits in memory. ``epoch`` = e writes the checkpoint of the same training run after e epochs
    (:func:`fit`'s ``stop_after``); the checkpoint's ``epoch`` entry records it (``train.epochs`` otherwise).
    """
    if epoch is not None and spec.weights is not None:
        raise ValueError(f"train_model: a checkpoint at epoch {epoch} of loaded weights ({spec.weights}) has no run")
    input_shape, classes, _ = describe(data_path)
    generator = torch.Generator().manual_seed(spec.train.seed)
    torch.manual_seed(spec.train.seed)  # layer initialization draws from the global generator
    if spec.weights is None:
        train, test = load_split(data_path, "train", workers=workers), load_split(data_path, "test", workers=workers)
        model = build_model(spec, input_shape, len(classes), *channel_stats(train.x)).to(device)
        history = fit(model, train, test, spec, device, generator, stop_after=epoch)
    else:
        model = build_model(spec, input_shape, len(classes), *weights.normalization(spec))
        _load_weights(model, spec)
        model.to(device)
        history = []
    preprocess = weights.preprocessing(spec, input_shape[-1])
    result = {
        f"{split}_acc": _accuracy_of(model, data_path, split, device, workers, preprocess)
        for split in ("train", "test")
    }
    done = spec.train.epochs if epoch is None else epoch
    log.info("epoch %d of %d: train_acc %.4f test_acc %.4f", done, spec.train.epochs, *result.values())
    save_checkpoint(
        out_path,
        model.cpu(),
        spec,
        input_shape,
        len(classes),
        {**result, "epoch": done, "history": history, "provenance": dict(attrs)},
    )
    return result
