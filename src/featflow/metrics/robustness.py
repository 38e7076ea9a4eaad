"""Sensitivity of every feature to Gaussian input noise (SPEC 1.5).

``x~ = x + N(0, sigma^2 I)`` added to the [0, 1] image (the model normalizes inside; sigma in pixel units, or in
normalized-input units when the caller scales it by the normalization's std); codes of the noisy inputs by the
batched NNLS. Sensitivity(z_i) = mean over images of Var_draws z_i(x~), divided by Var_images z_i(x). The
accuracy under the same noise tells whether a sigma is usable at all (:func:`at_chance`). The noise of an image
depends on its index and the seed only (:class:`Noise`), and the statistics are sums (:class:`SensitivityParts`),
so the images can be split into shard jobs whose merged result is the one job's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NOISE_BLOCK = 16
"""Images per noise generator (:class:`Noise`)."""


@dataclass(frozen=True)
class Noise:
    """Gaussian noise addressed by an image's index in the evaluated set: one generator per block of
    :data:`NOISE_BLOCK` images and noise level, seeded from (seed, level, block), so that the images of any
    contiguous slice (a shard, ``first`` its first index) get the noise they get in the whole set. The last block
    drawn is kept, so consecutive batches that share a block (fewer than 16 images per batch at many draws) draw
    it once, not once per batch."""

    seed: int
    first: int = 0
    _last: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _block(self, like: torch.Tensor, draws: int, level: int, block: int) -> torch.Tensor:
        """The noise (NOISE_BLOCK, draws, *like.shape[1:]) of one block, drawn or kept from the last call."""
        key = (level, block, draws, tuple(like.shape[1:]), like.dtype, like.device)
        if self._last.get("key") != key:
            state = np.random.SeedSequence([self.seed, level, block]).generate_state(1)[0]
            gen = torch.Generator(device=like.device).manual_seed(int(state))
            shape = (NOISE_BLOCK, draws, *like.shape[1:])
            self._last.update(key=key, noise=torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype))
        return self._last["noise"]

    def draw(self, like: torch.Tensor, draws: int, level: int, start: int) -> torch.Tensor:
        """Noise (m, draws, *like.shape[1:]) for the images ``like`` (m, ...) at ``start`` of the slice."""
        lo = self.first + start
        hi = lo + like.shape[0]
        parts = []
        for block in range(lo // NOISE_BLOCK, -(-hi // NOISE_BLOCK)):
            base = block * NOISE_BLOCK
            full = self._block(like, draws, level, block)
            parts.append(full[max(lo, base) - base : min(hi, base + NOISE_BLOCK) - base])
        return torch.cat(parts)


def _noisy_batches(
    images: torch.Tensor, sigma: float, level: int, draws: int, noise: Noise, batch_size: int
) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, noisy copies (b, draws, C, H, W)) over the images, about ``batch_size`` noisy images at a time."""
    per_image = max(1, batch_size // draws)
    for start in range(0, images.shape[0], per_image):
        rows = slice(start, start + per_image)
        x = images[rows]
        yield rows, x.unsqueeze(1) + sigma * noise.draw(x, draws, level, start)


@dataclass
class SensitivityParts:
    """What the sensitivities of a set of images are made of, summed so that the parts of disjoint sets (shards)
    merge exactly: the number of images, the mean and centered sum of squares of the clean codes (k,), and per
    noise level the sum over images of the codes' variance over the draws (levels, k). Float64."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    noisy_var: np.ndarray

    def merge(self, other: SensitivityParts) -> SensitivityParts:
        """The parts of both sets of images (Chan et al.'s pairwise update for the clean moments)."""
        n = self.n + other.n
        delta = other.mean - self.mean
        return SensitivityParts(
            n,
            self.mean + delta * (other.n / n),
            self.m2 + other.m2 + delta**2 * (self.n * other.n / n),
            self.noisy_var + other.noisy_var,
        )

    def sensitivity(self) -> np.ndarray:
        """(levels, k) mean over images of Var_draws z_i(x~) over Var_images z_i(x); NaN for constant features."""
        clean_var = self.m2 / max(self.n - 1, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(clean_var > 0, self.noisy_var / self.n / clean_var, np.nan)


@torch.no_grad()
def sensitivity_parts(
    images: torch.Tensor,
    encode: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    noise: Noise,
    batch_size: int = 2048,
) -> SensitivityParts:
    """:class:`SensitivityParts` of ``images`` (see :func:`sensitivity` for the arguments)."""
    if draws < 2:
        raise ValueError(f"robustness.draws {draws}: expected >= 2 (a variance over draws)")
    if any(s < 0 for s in sigmas):
        raise ValueError(f"robustness.sigmas {list(sigmas)}: expected values >= 0")
    clean = encode(images).double()
    rows = []
    for level, sigma in enumerate(sigmas):
        total = torch.zeros(clean.shape[1], dtype=torch.float64, device=clean.device)
        for _, noisy in _noisy_batches(images, sigma, level, draws, noise, batch_size):
            total += encode(noisy.flatten(0, 1)).double().unflatten(0, noisy.shape[:2]).var(1).sum(0)
        rows.append(total)
    mean = clean.mean(0)
    return SensitivityParts(
        clean.shape[0],
        mean.cpu().numpy(),
        (clean - mean).square().sum(0).cpu().numpy(),
        torch.stack(rows).cpu().numpy(),
    )


def sensitivity(
    images: torch.Tensor,
    encode: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    noise: Noise,
    batch_size: int = 2048,
) -> np.ndarray:
    """Noise sensitivity of every feature at every sigma.

    Parameters
    ----------
    images : (n, C, H, W) clean inputs, on the device.
    encode : inputs (b, C, H, W) -> codes (b, k) (the network up to the dictionary layer, then NNLS).
    sigmas : noise standard deviations.  draws : noise draws per image (>= 2).  noise : the draws' source.
    batch_size : noisy images per forward pass.

    Returns
    -------
    (len(sigmas), k) sensitivities; NaN for features constant on the clean images.
    """
    return sensitivity_parts(images, encode, sigmas, draws, noise, batch_size).sensitivity()


@torch.no_grad()
def noisy_correct(
    images: torch.Tensor,
    labels: torch.Tensor,
    classify: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    noise: Noise,
    batch_size: int = 2048,
) -> np.ndarray:
    """Correct predictions of ``classify`` (inputs -> logits) over ``draws`` noisy copies of every image, per
    sigma (len(sigmas),): counts, so that shards add up. The same noise as :func:`sensitivity` draws."""
    out = []
    for level, sigma in enumerate(sigmas):
        correct = 0
        for rows, noisy in _noisy_batches(images, sigma, level, draws, noise, batch_size):
            predicted = classify(noisy.flatten(0, 1)).argmax(1).unflatten(0, noisy.shape[:2])
            correct += int((predicted == labels[rows, None]).sum())
        out.append(correct)
    return np.asarray(out, np.int64)


def noisy_accuracy(
    images: torch.Tensor,
    labels: torch.Tensor,
    classify: Callable[[torch.Tensor], torch.Tensor],
    sigmas: Sequence[float],
    draws: int,
    noise: Noise,
    batch_size: int = 2048,
) -> np.ndarray:
    """Accuracy of ``classify`` on ``draws`` noisy copies of every image: (len(sigmas),)."""
    correct = noisy_correct(images, labels, classify, sigmas, draws, noise, batch_size=batch_size)
    return correct / (images.shape[0] * draws)


def check_classes(label_counts: Sequence[int], key: str = "robustness.images") -> None:
    """Refuse a sample of fewer than two classes: a constant predictor is right on all of it, so no accuracy can
    be told from chance (``key`` names the setting that sizes the sample)."""
    present = int((np.asarray(label_counts, np.int64) > 0).sum())
    if present < 2:
        raise ValueError(
            f"{key}: the evaluated images hold {present} class(es) ({int(np.sum(label_counts))} images); expected "
            "at least 2, so that the accuracy under noise can be told from a constant predictor's: raise it (or "
            "evaluate a split with more classes)"
        )


def at_chance(accuracy: Sequence[float], label_counts: Sequence[int], alpha: float = 0.01) -> list[bool]:
    """Whether each accuracy is not significantly above what a constant predictor scores on these images.

    Chance is the share of the most frequent label among the images evaluated (``label_counts``: images per
    class); one-sided binomial test over the number of images (noise draws of one image are not independent, so
    they do not add trials). A flagged sigma makes sensitivities meaningless there: the network no longer reads
    the image. Fewer than two classes are refused (:func:`check_classes`).
    """
    from scipy.stats import binomtest

    check_classes(label_counts)
    counts = np.asarray(label_counts, np.int64)
    n = int(counts.sum())
    chance = float(counts.max()) / n
    return [binomtest(int(round(acc * n)), n, chance, alternative="greater").pvalue > alpha for acc in accuracy]
