"""Fourier masks of essential frequencies (Karantzas et al. 2022; SPEC 3.1).

A mask M holds one weight in [0, 1] per DFT frequency of the full fft2 grid (shared by the channels, or one per
channel); the masked input is x_M = Re(ifft2(M * fft2(x))). With the classifier frozen, M minimizes

    L(M) = mean over images of exp((CE(N(x_M), y) - CE(N(x), y))^2) + lambda / |M_0|_1 * |M|_1,

the invariance term per image as in the authors' batch-1 training, |M_0|_1 being the L1 norm of the all-ones
start; M is clamped to [0, 1] after every Adam step. The clamp at 0 is what gives a mask exact zeros (a support
below 1, a complement with frequencies in it): it takes many small Adam steps (the authors: batch size 1, one step
per image), as Adam moves every weight by about lr per step whatever the size of its gradient. Written by hand: no
library implements these masks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from featflow import store
from featflow.data import load_split
from featflow.frequency.figures import MASKS_KIND
from featflow.frequency.spec import DatasetMaskSpec, ImageMaskSpec, MasksSpec
from featflow.models import load_checkpoint
from featflow.models.attacks import on_frozen_model

log = logging.getLogger(__name__)

KIND = MASKS_KIND
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


def band_index(height: int, width: int, n_bands: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Radial and angular band of every frequency of the fftshifted (H, W) grid, each (H * W,) in [0, B).

    As Karantzas et al. define them, around the zero frequency at (H // 2, W // 2): radial bands are B annuli
    [r_i, r_i+1) of equal width up to the corner distance; angular bands are B wedges of the direction
    theta = atan2(-f_y, f_x) in [0, 2 pi), counterclockwise from +f_x with f_y pointing up the displayed mask,
    wedge i = (t_i, t_i+1] and wedge 0 = [0, t_1]. Named differences: the corner frequency (dropped by the
    authors' open outer annulus) is in the last annulus; the zero frequency, which has no direction and which the
    authors' rasterized wedges count in every second wedge, is in wedge 0; frequencies exactly on a wedge edge
    go to the wedge that ends there (the rasterization splits some of them the other way: 97% of the 32 x 32
    grid's frequencies fall in the same wedge as the authors', all but the edge diagonals).
    """
    fy = torch.arange(height, dtype=torch.float64) - height // 2
    fx = torch.arange(width, dtype=torch.float64) - width // 2
    gy, gx = torch.meshgrid(fy, fx, indexing="ij")
    radius = torch.sqrt(gy**2 + gx**2).flatten()
    radial = (radius / radius.max() * n_bands + 1e-9).floor().long().clamp_max(n_bands - 1)
    angle = torch.atan2(-gy, gx).flatten() % (2 * math.pi)
    angular = (torch.ceil(angle / (2 * math.pi) * n_bands - 1e-9).long() - 1).clamp(0, n_bands - 1)
    return radial, angular


def band_energies(masks: torch.Tensor, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Band energies of each fftshifted, L2-normalized mask as the authors define them: the L2 norm of the mask
    within each of B radial annuli and B angular wedges (:func:`band_index`), channels pooled.

    Parameters
    ----------
    masks : (N, Cm, H, W) masks.

    Returns
    -------
    radial, angular : (N, B) energies; the squares of each row sum to 1 (the bands partition the grid). NaN rows
        for an empty mask (every weight 0: the blank image keeps the prediction), which has no band profile.
    """
    shifted = torch.fft.fftshift(masks.double(), dim=(-2, -1))
    norm = shifted.flatten(1).norm(dim=1)
    norm = torch.where(norm > 0, norm, torch.nan)
    power = ((shifted / norm[:, None, None, None]) ** 2).sum(1).flatten(1)  # (N, H * W)
    radial, angular = band_index(masks.shape[-2], masks.shape[-1], n_bands)
    onehot = [F.one_hot(idx, n_bands).double() for idx in (radial, angular)]
    return (power @ onehot[0]).sqrt().numpy(), (power @ onehot[1]).sqrt().numpy()


def mask_probe(masks: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> tuple[float, float]:
    """Cross-validated accuracy of a linear classifier predicting the class from per-image masks, and the same
    with shuffled labels (the paper's control: 82% vs 21%). ``masks`` (N, D), ``labels`` (N,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score

    rng = np.random.default_rng(seed)
    folds = min(folds, labels.shape[0])
    split = KFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = LogisticRegression(max_iter=2000)
    real = cross_val_score(clf, masks, labels, cv=split).mean()
    shuffled = cross_val_score(clf, masks, rng.permutation(labels), cv=split).mean()
    return float(real), float(shuffled)


def holdout_parts(n: int, fit_fraction: float, val_fraction: float) -> tuple[slice, slice, slice]:
    """Disjoint fit, validation and test slices of ``n`` images (in that order, each non-empty): the data-set mask
    is fit on the first, its epoch chosen on the second, its accuracies measured on the third."""
    n_fit, n_val = round(n * fit_fraction), round(n * val_fraction)
    if min(n_fit, n_val, n - n_fit - n_val) < 1:
        raise ValueError(
            f"frequency.masks: max_samples {n} with fit_fraction {fit_fraction} and val_fraction {val_fraction} "
            "leaves an empty fit, validation or test part; raise max_samples or lower the fractions"
        )
    return slice(0, n_fit), slice(n_fit, n_fit + n_val), slice(n_fit + n_val, n)


def seeded_test_images(
    data_path: str | Path, n: int, seed: int, key: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator]:
    """The first ``n`` of a seeded permutation of the test split: images (N, C, H, W), labels, their indices in the
    split, and the generator that drew them. Two models analyzed with the same seed see the same images.
    ``key`` names the config entry for the error message."""
    split = load_split(data_path, "test")
    if split.x.ndim != 4:
        raise ValueError(f"{key}: the frequency analyses need images (N, C, H, W), got {tuple(split.x.shape)}")
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(split.x.shape[0], generator=generator)[:n]
    return split.x[keep], split.y[keep], keep, generator


def fourier_mask_analysis(
    checkpoint: str | Path,
    data_path: str | Path,
    spec: MasksSpec,
    out_path: str | Path,
    *,
    device: torch.device | str,
    seed: int,
    attrs: dict[str, Any],
) -> dict[str, float]:
    """Data-set and per-image Fourier masks of one model on the test split, with their accuracies, densities,
    band energies and class probe, written to ``out_path`` (HDF5 kind ``fourier_masks``).

    The evaluated images are the first ``max_samples`` of a seeded permutation of the test split, so that two
    models evaluated with the same seed see the same images (their masks are compared image by image). The
    data-set mask is fit on their first part, its epoch chosen on the second, and its clean, masked and complement
    accuracies measured on the third (:func:`holdout_parts`); per-image masks are fit on the first images.
    """
    model, _ = load_checkpoint(checkpoint, device)
    x, y, keep, generator = seeded_test_images(data_path, spec.max_samples, seed, "frequency.masks.dataset")
    shape = mask_shape(spec.channels, *x.shape[1:])
    part_fit, part_val, part_test = holdout_parts(x.shape[0], spec.fit_fraction, spec.val_fraction)
    fit = learn_dataset_mask(
        model,
        x[part_fit],
        y[part_fit],
        spec.dataset_mask,
        shape,
        device=device,
        generator=generator,
        validation=(x[part_val], y[part_val]),
    )
    mask, history = fit.mask, fit.history
    heldout, predictions = heldout_accuracies(model, mask, x[part_test], y[part_test], device)

    n_img = min(spec.image_masks.n_images, x.shape[0])
    xi, target = x[:n_img], predict(model, x[:n_img], device=device)[0]
    image_fit = learn_image_masks(model, xi, target, spec.image_masks, shape, device)
    img_masks, steps = image_fit.masks, image_fit.steps
    if not image_fit.converged.all():
        log.warning(
            "image masks: %d of %d did not meet the stopping rule (prediction and loss stable for "
            "frequency.masks.image_masks.patience %d steps) within max_steps %d; recorded as image_converged",
            int((~image_fit.converged).sum()),
            n_img,
            spec.image_masks.patience,
            spec.image_masks.max_steps,
        )
    img_pred, _ = predict(model, xi, img_masks, device=device)
    img_comp, _ = predict(model, xi, complement(img_masks), device=device)
    img_comp_support = complement_support(img_masks)
    probe, probe_shuffled = mask_probe(img_masks.flatten(1).numpy(), y[:n_img].numpy(), spec.probe_folds, seed)

    radial_d, angular_d = band_energies(mask[None], spec.n_bands)
    radial_i, angular_i = band_energies(img_masks, spec.n_bands)
    summary = {
        "n_fit": part_fit.stop,
        "n_validation": part_val.stop - part_val.start,
        "n_test": part_test.stop - part_test.start,
        **heldout,
        "criterion_met": fit.criterion_met,
        "mask_epoch": fit.epoch,
        "image_kept": (img_pred == target).float().mean().item(),
        "image_complement_kept": float((img_comp == target)[torch.from_numpy(img_comp_support > 0)].float().mean()),
        "image_complement_support": float(np.median(img_comp_support)),
        "image_complement_empty": float((img_comp_support == 0).mean()),
        "image_density": img_masks.mean().item(),
        "image_support": (img_masks > 0).float().mean().item(),
        "image_steps_max": int(steps.max()),
        "image_steps_median": float(np.median(steps)),
        "image_converged": float(image_fit.converged.mean()),
        "probe_acc": probe,
        "probe_acc_shuffled": probe_shuffled,
    }
    if heldout["complement_support"] == 0:
        log.warning(
            "masks: the data-set mask kept (epoch %d) keeps every frequency (smallest weight %.3g > 0): its complement "
            "is the blank image, so complement_acc is not computed (NaN); give the mask more Adam steps "
            "(frequency.masks.dataset_mask.batch_size 1, as the authors, or more epochs)%s",
            fit.epoch,
            float(mask.min()),
            "" if fit.criterion_met else "; it never met the accuracy criterion",
        )
    log.info("masks: %s", summary)
    arrays = {
        "dataset_mask": mask.numpy(),
        "image_masks": img_masks.numpy(),
        "images": xi.numpy(),
        "indices": keep.numpy(),
        "labels": y.numpy(),
        "image_targets": target.numpy(),
        # per-image predictions on the evaluated images: paired CIs of masked vs clean accuracy (featflow.claims)
        "predictions": predictions,  # the held-out test part's, not used to fit or choose the mask
        "image_steps": steps,
        "image_converged": image_fit.converged,
        "history": {k: np.asarray([row[k] for row in history]) for k in history[0]},
        "bands": {
            "radial_dataset": radial_d[0],
            "angular_dataset": angular_d[0],
            "radial_images": radial_i,
            "angular_images": angular_i,
        },
    }
    store.write_h5(out_path, KIND, arrays, {**attrs, **summary, "n_bands": spec.n_bands, "channels": spec.channels})
    return summary
