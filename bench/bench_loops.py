"""Benchmark: the loops issue 28.6 batched, each against the code it replaced (kept here as the reference), at the
default size and a larger one; CPU seconds of this process (``time.process_time``), 3 runs, min / median, one
thread everywhere (torch, and BLAS / OpenMP through threadpoolctl); each pair's outputs are checked equal (the
IdCor null and the noise) or equally distributed (planted images: the draw order changed). Run:
    nice -n 5 .venv/bin/python bench/bench_loops.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from featflow.data.planted import _COUNT_PROBS, _COUNTS, _GRID, _SQUARE_RGB, _backgrounds, generate_planted
from featflow.frequency.idcor import JointNull, standardize, twonn
from featflow.metrics.robustness import NOISE_BLOCK, Noise


def _timed(run: Callable[[], object]) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(3):
        start = time.process_time()
        out = run()
        times.append(time.process_time() - start)
    return min(times), statistics.median(times), out


def _row(name: str, size: str, old: Callable[[], object], new: Callable[[], object], same: Callable) -> None:
    o_min, o_med, o_out = _timed(old)
    n_min, n_med, n_out = _timed(new)
    assert same(o_out, n_out), name
    print(f"| {name} | {size} | {o_min:.3f} / {o_med:.3f} | {n_min:.3f} / {n_med:.3f} | {o_med / n_med:.1f}x |")


def idcor_null(n: int, dims: int, n_perm: int, y_dims: int | None = None) -> None:
    gen = torch.Generator().manual_seed(0)
    y_dims = y_dims or dims
    x = standardize(torch.randn(n, dims, generator=gen, dtype=torch.float64))
    y = standardize(torch.tanh(x @ torch.randn(dims, y_dims, generator=gen, dtype=torch.float64)))
    perms = [torch.randperm(n, generator=gen) for _ in range(n_perm)]

    def old() -> np.ndarray:  # before: every shuffle's neighbor search over all Dx + Dy features
        return np.array([twonn(torch.cat([x, y[p]], 1)) for p in perms])

    def new() -> np.ndarray:
        joint = JointNull.of(x, y)
        return np.array([joint.dimension(p, 0.9) for p in perms])

    _row("IdCor permutation null", f"N {n}, Dx {dims}, Dy {y_dims}, {n_perm} shuffles", old, new, np.array_equal)


def _grating(size: int, vertical: bool, phase: int) -> np.ndarray:
    stripes = ((np.arange(size) + phase) // 2) % 2
    wave = np.where(stripes == 1, 0.85, 0.15)
    return np.tile(wave[None, :], (size, 1)) if vertical else np.tile(wave[:, None], (1, size))


def planted_loop(n: int, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The per-image synthesis before issue 28.6 (images before the final noise, and the counts)."""
    cell = image_size // _GRID
    color = rng.integers(0, 2, n)
    orientation = rng.integers(0, 2, n)
    count = rng.choice(_COUNTS, size=n, p=_COUNT_PROBS)
    images = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    images[:] = _backgrounds(color, rng)[:, :, None, None]
    patch, square = int(round(1.5 * cell)), max(2, cell // 2)
    for i in range(n):
        r, c = rng.integers(0, _GRID - 1, 2)
        y0 = r * cell + rng.integers(0, 2 * cell - patch + 1)
        x0 = c * cell + rng.integers(0, 2 * cell - patch + 1)
        images[i, :, y0 : y0 + patch, x0 : x0 + patch] = _grating(patch, bool(orientation[i]), int(rng.integers(4)))
        free = [(a, b) for a in range(_GRID) for b in range(_GRID) if not (r <= a <= r + 1 and c <= b <= c + 1)]
        for k in rng.choice(len(free), size=count[i], replace=False):
            a, b = free[k]
            sy = a * cell + rng.integers(0, cell - square + 1)
            sx = b * cell + rng.integers(0, cell - square + 1)
            images[i, :, sy : sy + square, sx : sx + square] = _SQUARE_RGB[:, None, None]
    np.clip(images + rng.normal(0.0, 0.02, size=images.shape), 0.0, 1.0)
    return images, count


def _green_squares(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32) / (255 if images.dtype == np.uint8 else 1)
    return ((x[:, 1] > 0.8) & (x[:, 0] < 0.3) & (x[:, 2] < 0.3)).sum((1, 2))


def planted(n: int) -> None:
    def same(old: tuple, new: tuple) -> bool:  # every image shows its count of squares, equal count frequencies
        (o_img, o_count), (n_img, _, n_factors) = old, new
        counts = n_factors[:, 3]
        ok = np.array_equal(_green_squares(o_img), 16 * o_count) and np.array_equal(_green_squares(n_img), 16 * counts)
        return ok and np.allclose(np.bincount(o_count) / n, np.bincount(counts.astype(int)) / n, atol=0.03)

    old = lambda: planted_loop(n, 32, np.random.default_rng(0))  # noqa: E731
    new = lambda: generate_planted(n, 32, np.random.default_rng(0))  # noqa: E731
    _row("planted synthesis", f"{n} images of 32 px", old, new, same)


def _old_draw(noise: Noise, like: torch.Tensor, draws: int, level: int, start: int) -> torch.Tensor:
    """Noise.draw before issue 28.6: every call draws its blocks again."""
    lo = noise.first + start
    hi = lo + like.shape[0]
    parts = []
    for block in range(lo // NOISE_BLOCK, -(-hi // NOISE_BLOCK)):
        state = np.random.SeedSequence([noise.seed, level, block]).generate_state(1)[0]
        gen = torch.Generator().manual_seed(int(state))
        full = torch.randn((NOISE_BLOCK, draws, *like.shape[1:]), generator=gen, dtype=like.dtype)
        base = block * NOISE_BLOCK
        parts.append(full[max(lo, base) - base : min(hi, base + NOISE_BLOCK) - base])
    return torch.cat(parts)


def noise(images: int, draws: int, batch_size: int = 2048) -> None:
    x = torch.zeros(images, 3, 32, 32)
    per_image = max(1, batch_size // draws)  # robustness._noisy_batches' images per batch

    def run(draw: Callable) -> float:
        return sum(float(draw(x[s : s + per_image], s).sum()) for s in range(0, images, per_image))

    old = lambda: run(lambda like, s: _old_draw(Noise(0), like, draws, 0, s))  # noqa: E731
    fresh = Noise(0)
    new = lambda: run(lambda like, s: fresh.draw(like, draws, 0, s))  # noqa: E731
    _row("Noise.draw over the batches", f"{images} images of 3 x 32 x 32, {draws} draws", old, new, float.__eq__)


def main() -> None:
    torch.set_num_threads(1)
    with threadpool_limits(1):
        print("| loop | size | before CPU s min / median | after CPU s min / median | median ratio |")
        print("|---|---|---|---|---|")
        idcor_null(500, 64, 20)  # the default: frequency.idcor max_samples 500, n_perm 20
        idcor_null(2000, 64, 20)
        idcor_null(1000, 256, 20, 512)  # ResNet-like widths (the CIFAR-10 preset's layers, pooled)
        planted(5000)  # the default planted data set: 4,000 + 1,000 images
        planted(20000)
        noise(64, 8)  # the default: robustness.draws 8
        noise(64, 100)  # the paper's 100 draws per image (20 images per batch)
        noise(32, 2000)  # one image per batch


if __name__ == "__main__":
    main()
