"""Fourier masks of essential frequencies (Karantzas et al. 2022; SPEC 3.1): the mask, its loss and its fits.

A mask M holds one weight in [0, 1] per DFT frequency of the full fft2 grid (shared by the channels, or one per
channel); the masked input is x_M = Re(ifft2(M * fft2(x))). With the classifier frozen, M minimizes

    L(M) = mean over images of exp((CE(N(x_M), y) - CE(N(x), y))^2) + lambda / |M_0|_1 * |M|_1,

the invariance term per image as in the authors' batch-1 training, |M_0|_1 being the L1 norm of the all-ones
start; M is clamped to [0, 1] after every Adam step. The clamp at 0 is what gives a mask exact zeros (a support
below 1, a complement with frequencies in it): it takes many small Adam steps (the authors: batch size 1, one step
per image), as Adam moves every weight by about lr per step whatever the size of its gradient. Written by hand: no
library implements these masks.

The measurements of a mask are in :mod:`featflow.frequency.bands`; the stage that reads a model and its images and
writes the masks file is :mod:`featflow.frequency.fourier_masks`.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from featflow.frequency.spec import DatasetMaskSpec, ImageMaskSpec
from featflow.models.attacks import on_frozen_model

log = logging.getLogger(__name__)

CHANNEL_MODES = ("shared", "per_channel")
PCT_START = 0.1  # share of the one-cycle schedule spent warming up (the authors' mask_schedule)


def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x_M = Re(ifft2(M * fft2(x))) for x (N, C, H, W) and M broadcastable to it ((Cm, H, W) or (N, Cm, H, W))."""
    return torch.fft.ifft2(torch.fft.fft2(x) * mask).real


def complement(mask: torch.Tensor) -> torch.Tensor:
    """M' = 1 - 1[M > 0]: keeps exactly the frequencies the mask dropped."""
    return 1.0 - (mask > 0).to(mask.dtype)


def complement_support(mask: torch.Tensor) -> float | np.ndarray:
    """Share of frequencies the complement 1 - 1[M > 0] keeps: of one mask (Cm, H, W), a float; of per-image masks
    (N, Cm, H, W), one per mask (N,). 0 means an empty complement (the blank image)."""
    share = complement(mask).flatten(-3).mean(-1)
    return float(share) if mask.ndim == 3 else share.numpy()


def snap_to_zero(mask: torch.Tensor, zero_below: float) -> torch.Tensor:
    """The mask with every weight below ``zero_below`` x its largest weight set to exactly 0.

    The last Adam steps of the one-cycle schedule are tiny (lr / 1e4) and lift weights that the clamp holds at 0 a
    hair above it, so 1[M > 0] flickers from epoch to epoch (measured on the default's cnn-fashion: 86 of 784
    weights in (0, 1e-4], none in (1e-3, 1e-2]); snapping them makes the support, and the complement, a property of
    the mask rather than of the last step. The accuracy criterion is checked on the snapped mask.
    """
    return torch.where(mask < zero_below * mask.max(), torch.zeros_like(mask), mask)


def mask_shape(channels: str, n_channels: int, height: int, width: int) -> tuple[int, int, int]:
    """(Cm, H, W): Cm = 1 for a mask shared by the channels, C for one mask per channel."""
    if channels not in CHANNEL_MODES:
        raise ValueError(f"frequency.masks.channels '{channels}': expected one of {CHANNEL_MODES}")
    return (1 if channels == "shared" else n_channels, height, width)


def invariance_loss(ce_masked: torch.Tensor, ce_clean: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """exp((CE_M - CE)^2) per image + lam * |M|_1 / |M_0|_1 per mask, CEs (N,) per image.

    For per-image masks (N, Cm, H, W): the (N,) losses. For one data-set mask (Cm, H, W): the mean over the
    images of their per-image terms plus the penalty, a scalar (the authors train it with batch size 1, so the
    invariance term is per image, not the square of a batch mean).
    """
    l1 = mask.abs().flatten(-3).sum(-1) / mask.shape[-3:].numel()
    invariance = torch.exp((ce_masked - ce_clean) ** 2)
    return (invariance.mean() if mask.ndim == 3 else invariance) + lam * l1


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits argmax and the logits of (masked) inputs, batched; a per-image mask has one row per input.

    Returns (N,) predictions and (N, K) logits on the CPU.
    """
    logits = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        if mask is not None:
            mb = mask if mask.ndim == 3 else mask[start : start + batch_size]
            xb = apply_mask(xb, mb.to(device))
        logits.append(model(xb).cpu())
    out = torch.cat(logits)
    return out.argmax(1), out


@dataclasses.dataclass(frozen=True)
class DatasetMaskFit:
    """A data-set mask (Cm, H, W), its per-epoch history, and whether it met the stopping criterion (masked
    accuracy >= target_ratio x clean accuracy) at the epoch ``epoch`` it comes from."""

    mask: torch.Tensor
    history: list[dict[str, float]]
    criterion_met: bool
    epoch: int


@on_frozen_model
def learn_dataset_mask(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: DatasetMaskSpec,
    shape: tuple[int, int, int],
    *,
    validation: tuple[torch.Tensor, torch.Tensor],
    device: torch.device | str,
    generator: torch.Generator,
) -> DatasetMaskFit:
    """One mask (Cm, H, W) for the images ``x`` (N, C, H, W) with true labels ``y`` (N,).

    Adam with a one-cycle schedule (the authors' 10% warm-up) over minibatches of per-image losses (the authors:
    batch size 1), M clamped to [0, 1] after each step. After each epoch the mask is snapped
    (:func:`snap_to_zero` with ``zero_below``). As in the authors' code, the mask kept is the latest snapped one
    whose masked accuracy reached ``target_ratio`` of the clean accuracy, both measured on the ``validation``
    images and labels (not used to fit; the accuracy reported is on a third part); training stops after an epoch
    that meets it with the density (mean weight) moving less than ``stall``. A mask that never met it is returned
    flagged (``criterion_met`` False) and logged as a warning.
    """
    n = x.shape[0]
    _, clean_logits = predict(model, x, device=device)
    ce_clean = F.cross_entropy(clean_logits, y, reduction="none")
    x_val, y_val = validation
    clean_acc = (predict(model, x_val, device=device)[0] == y_val).float().mean().item()
    mask = torch.ones(shape, device=device, requires_grad=True)
    opt = torch.optim.Adam([mask], lr=spec.lr)
    steps_per_epoch = math.ceil(n / spec.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=spec.lr, total_steps=spec.epochs * steps_per_epoch, pct_start=PCT_START
    )
    history: list[dict[str, float]] = []
    density, kept = 1.0, None
    for epoch in tqdm(range(spec.epochs), desc="dataset mask", unit="epoch"):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            ce_masked = F.cross_entropy(model(apply_mask(xb, mask)), yb, reduction="none")
            loss = invariance_loss(ce_masked, ce_clean[idx].to(device), mask, spec.lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                mask.clamp_(0.0, 1.0)
        snapped = snap_to_zero(mask.detach(), spec.zero_below)
        pred, _ = predict(model, x_val, snapped, device=device)
        row = {
            "epoch": epoch + 1,
            "masked_acc": (pred == y_val).float().mean().item(),
            "density": snapped.mean().item(),
            "support": (snapped > 0).float().mean().item(),
            "loss": loss.item(),
        }
        history.append(row)
        log.info(
            "dataset mask epoch %(epoch)d masked_acc %(masked_acc).4f density %(density).4f support %(support).3f", row
        )
        stalled = abs(row["density"] - density) < spec.stall
        density = row["density"]
        if row["masked_acc"] >= spec.target_ratio * clean_acc:
            kept = (snapped.cpu().clone(), epoch + 1)
            if stalled:
                break
    if kept is None:
        log.warning(
            "dataset mask: masked validation accuracy never reached frequency.masks.dataset_mask.target_ratio %.3f "
            "x clean accuracy %.4f in %d epochs (last %.4f): the mask is flagged criterion_met = False",
            spec.target_ratio,
            clean_acc,
            spec.epochs,
            history[-1]["masked_acc"],
        )
        return DatasetMaskFit(snapped.cpu(), history, False, len(history))
    return DatasetMaskFit(kept[0], history, True, kept[1])


def heldout_accuracies(
    model: nn.Module, mask: torch.Tensor, x: torch.Tensor, y: torch.Tensor, device: torch.device | str
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Clean, masked and complement accuracy of one mask (Cm, H, W) on images ``x`` with labels ``y`` (images not
    used to fit or choose it), beside its density, support and the complement's share of frequencies, and the
    per-image predictions. An empty complement is the blank image: its accuracy is the class share, not a test,
    so it is refused (NaN)."""
    pred = {name: predict(model, x, m, device=device)[0] for name, m in (("clean", None), ("masked", mask))}
    pred["complement"] = predict(model, x, complement(mask), device=device)[0]
    acc = {name: (p == y).float().mean().item() for name, p in pred.items()}
    comp_support = complement_support(mask)
    summary = {
        "clean_acc": acc["clean"],
        "masked_acc": acc["masked"],
        "complement_acc": acc["complement"] if comp_support > 0 else float("nan"),
        "complement_support": comp_support,
        "density": mask.mean().item(),
        "support": (mask > 0).float().mean().item(),
    }
    return summary, {**{name: p.numpy() for name, p in pred.items()}, "labels": y.numpy()}


@dataclasses.dataclass(frozen=True)
class ImageMaskFit:
    """Per-image masks (N, Cm, H, W) on the CPU, the step each one converged or stopped at (N,), and whether it
    converged (N,): prediction and loss stable for ``patience`` steps (the authors' stopping rule)."""

    masks: torch.Tensor
    steps: np.ndarray
    converged: np.ndarray


@on_frozen_model
def learn_image_masks(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    spec: ImageMaskSpec,
    shape: tuple[int, int, int],
    device: torch.device | str,
) -> ImageMaskFit:
    """Per-image masks (N, Cm, H, W) toward ``target`` (N,) (the network's own prediction), optimized at once.

    The per-image losses are summed, so each mask gets its own gradient and Adam moment. A mask converges, as in
    the authors' code, once its masked prediction equals its target and its loss changed by less than ``tol`` at
    each of ``patience`` consecutive steps (prediction, invariance and sparsity stable): it is kept as it is then.
    The chunk stops when every mask converged, or after ``max_steps``; masks still moving then are returned as
    they are, marked unconverged (convergence is recorded per mask, not per chunk).
    """
    fits = []
    for start in range(0, x.shape[0], spec.batch_size):
        xb = x[start : start + spec.batch_size].to(device)
        tb = target[start : start + spec.batch_size].to(device)
        n = xb.shape[0]
        with torch.no_grad():
            ce_clean = F.cross_entropy(model(xb), tb, reduction="none")
        mask = torch.ones((n, *shape), device=device, requires_grad=True)
        opt = torch.optim.Adam([mask], lr=spec.lr)
        calm = torch.zeros(n, dtype=torch.long, device=device)
        previous = torch.full((n,), float("inf"), device=device)
        final = torch.ones_like(mask)
        steps = torch.full((n,), spec.max_steps, dtype=torch.long, device=device)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        for step in tqdm(range(1, spec.max_steps + 1), desc="image masks", unit="step", mininterval=5):
            active = (~done).nonzero().squeeze(1)  # converged masks leave the batch (each is its own problem)
            logits = model(apply_mask(xb[active], mask[active]))
            ce = F.cross_entropy(logits, tb[active], reduction="none")
            loss = invariance_loss(ce, ce_clean[active], mask[active], spec.lam)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            with torch.no_grad():
                stable = (logits.argmax(1) == tb[active]) & ((loss - previous[active]).abs() < spec.tol)
                calm[active] = (calm[active] + 1) * stable
                previous[active] = loss.detach()
                now = active[calm[active] >= spec.patience]  # the masks that gave these stable losses, before the step
                final[now], steps[now], done[now] = mask[now], step, True
            if bool(done.all()):
                break
            opt.step()
            with torch.no_grad():
                mask.clamp_(0.0, 1.0)
        with torch.no_grad():
            final[~done] = mask[~done]
        fits.append((final.detach().cpu(), steps.cpu().numpy(), done.cpu().numpy()))
    masks, steps, converged = zip(*fits, strict=True)
    return ImageMaskFit(torch.cat(masks), np.concatenate(steps), np.concatenate(converged))
