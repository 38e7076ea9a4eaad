"""Sensitivity of every feature to Gaussian input noise (SPEC 1.5).

``x~ = x + N(0, sigma^2 I)`` added to the [0, 1] image (the model normalizes inside; sigma in pixel units, or in
normalized-input units when the caller scales it by the normalization's std); codes of the noisy inputs by the
batched NNLS. Sensitivity(z_i) = mean over images of Var_draws z_i(x~), divided by Var_images z_i(x). The
accuracy under the same noise tells whether a sigma is usable at all (:func:`at_chance`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch


def _noisy_batches(
    images: torch.Tensor, sigma: float, draws: int, generator: torch.Generator, batch_size: int
) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, noisy copies (b, draws, C, H, W)) over the images, about ``batch_size`` noisy images at a time."""
    per_image = max(1, batch_size // draws)
    for start in range(0, images.shape[0], per_image):
        rows = slice(start, start + per_image)
        x = images[rows]
        noise = torch.randn((x.shape[0], draws, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
        yield rows, x.unsqueeze(1) + sigma * noise


@torch.no_grad()
def sensitivity(
    images: torch.Tensor,
    encode: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    generator: torch.Generator,
    batch_size: int = 2048,
) -> torch.Tensor:
    """Noise sensitivity of every feature at every sigma.

    Parameters
    ----------
    images : (n, C, H, W) clean inputs in [0, 1], on the device.
    encode : inputs (b, C, H, W) -> codes (b, k) (the network up to the dictionary layer, then NNLS).
    sigmas : noise standard deviations in pixel units.  draws : noise draws per image (>= 2).
    batch_size : noisy images per forward pass.

    Returns
    -------
    (len(sigmas), k) sensitivities; NaN for features constant on the clean images.
    """
    if draws < 2:
        raise ValueError(f"robustness.draws {draws}: expected >= 2 (a variance over draws)")
    if any(s < 0 for s in sigmas):
        raise ValueError(f"robustness.sigmas {list(sigmas)}: expected values >= 0")
    clean_var = encode(images).double().var(0)
    rows = []
    for sigma in sigmas:
        total = None
        for _, noisy in _noisy_batches(images, sigma, draws, generator, batch_size):
            codes = encode(noisy.flatten(0, 1)).double().unflatten(0, noisy.shape[:2])
            part = codes.var(1).sum(0)
            total = part if total is None else total + part
        rows.append(total / images.shape[0])
    out = torch.stack(rows) / clean_var
    return torch.where(clean_var > 0, out, torch.nan)


@torch.no_grad()
def noisy_accuracy(
    images: torch.Tensor,
    labels: torch.Tensor,
    classify: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    generator: torch.Generator,
    batch_size: int = 2048,
) -> torch.Tensor:
    """Accuracy of ``classify`` (inputs -> logits) on ``draws`` noisy copies of every image: (len(sigmas),)."""
    out = []
    for sigma in sigmas:
        correct = 0
        for rows, noisy in _noisy_batches(images, sigma, draws, generator, batch_size):
            predicted = classify(noisy.flatten(0, 1)).argmax(1).unflatten(0, noisy.shape[:2])
            correct += int((predicted == labels[rows, None]).sum())
        out.append(correct / (images.shape[0] * draws))
    return torch.tensor(out, dtype=torch.float64)


def at_chance(accuracy: Sequence[float], labels: torch.Tensor, alpha: float = 0.01) -> list[bool]:
    """Whether each accuracy is not significantly above what a constant predictor scores on these images.

    Chance is the share of the most frequent label; one-sided binomial test over the number of images (noise
    draws of one image are not independent, so they do not add trials). A flagged sigma makes sensitivities
    meaningless there: the network no longer reads the image.
    """
    from scipy.stats import binomtest

    n = int(labels.numel())
    chance = float(torch.bincount(labels.long()).max()) / n
    return [binomtest(int(round(acc * n)), n, chance, alternative="greater").pvalue > alpha for acc in accuracy]
