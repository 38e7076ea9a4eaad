"""The Fourier masks stage (SPEC 3.1): one model's data-set and per-image masks of essential frequencies on a
seeded sample of its test images, with their held-out accuracies, band energies and class probe, in one HDF5 file
(kind ``fourier_masks``). The masks and their fits are in :mod:`featflow.frequency.masks`, their measurements in
:mod:`featflow.frequency.bands`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from featflow import store
from featflow.frequency.bands import band_energies, mask_probe
from featflow.frequency.figures import MASKS_KIND
from featflow.frequency.images import seeded_test_images
from featflow.frequency.masks import (
    ImageMaskFit,
    complement,
    complement_support,
    heldout_accuracies,
    learn_dataset_mask,
    learn_image_masks,
    mask_shape,
    predict,
)
from featflow.frequency.spec import MasksSpec
from featflow.models import load_checkpoint

log = logging.getLogger(__name__)

KIND = MASKS_KIND


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


def image_summary(
    model: nn.Module, xi: torch.Tensor, target: torch.Tensor, fit: ImageMaskFit, device: torch.device | str
) -> dict[str, float]:
    """How the per-image masks of the images ``xi`` keep their ``target`` predictions, with their complements'
    (over the masks whose complement is not the blank image), densities, supports and steps."""
    masks, steps = fit.masks, fit.steps
    kept, _ = predict(model, xi, masks, device=device)
    comp, _ = predict(model, xi, complement(masks), device=device)
    comp_support = complement_support(masks)
    return {
        "image_kept": (kept == target).float().mean().item(),
        "image_complement_kept": float((comp == target)[torch.from_numpy(comp_support > 0)].float().mean()),
        "image_complement_support": float(np.median(comp_support)),
        "image_complement_empty": float((comp_support == 0).mean()),
        "image_density": masks.mean().item(),
        "image_support": (masks > 0).float().mean().item(),
        "image_steps_max": int(steps.max()),
        "image_steps_median": float(np.median(steps)),
        "image_converged": float(fit.converged.mean()),
    }


def bands(mask: torch.Tensor, image_masks: torch.Tensor, n_bands: int) -> dict[str, np.ndarray]:
    """Radial and angular band energies of the data-set mask (B,) and of every per-image mask (N, B)."""
    radial_d, angular_d = band_energies(mask[None], n_bands)
    radial_i, angular_i = band_energies(image_masks, n_bands)
    return {
        "radial_dataset": radial_d[0],
        "angular_dataset": angular_d[0],
        "radial_images": radial_i,
        "angular_images": angular_i,
    }


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
    images = image_summary(model, xi, target, image_fit, device)
    probe, probe_shuffled = mask_probe(img_masks.flatten(1).numpy(), y[:n_img].numpy(), spec.probe_folds, seed)
    summary = {
        "n_fit": part_fit.stop,
        "n_validation": part_val.stop - part_val.start,
        "n_test": part_test.stop - part_test.start,
        **heldout,
        "criterion_met": fit.criterion_met,
        "mask_epoch": fit.epoch,
        **images,
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
        "bands": bands(mask, img_masks, spec.n_bands),
    }
    store.write_h5(out_path, KIND, arrays, {**attrs, **summary, "n_bands": spec.n_bands, "channels": spec.channels})
    return summary
