"""Benchmark of the FV/IFV branch: batched Jacobian vs a loop of n_f backward passes, and FV throughput.

Sizes: the default small CNN (32 x 32, block3.1, n_f 16), at one realization and at the stage's
``sample_chunk`` = 16 realizations per Jacobian batch, and with ``--googlenet`` a GoogLeNet-inception4c-like
setting (torchvision GoogLeNet, random init, no download, 224 x 224, fft_energy). Both sides run at the same
thread count in one process; times are the best of ``--repeats`` in CPU seconds (load on other cores cancels)
and wall seconds. Run:
    .venv/bin/python bench/bench_fv.py [--threads 1] [--googlenet] [--n-f 32] [--repeats 3]
and copy the printed table into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

import torch

from featflow.config import ModelSpec
from featflow.fv.objectives import objective
from featflow.fv.optimize import feature_fn
from featflow.fv.param import init_params
from featflow.fv.targets import make_targets
from featflow.ifv.jacobian import jacobian_batched, jacobian_loop
from featflow.models import build_model

log = logging.getLogger("bench_fv")


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        times.append((time.process_time() - cpu, time.perf_counter() - wall))
    return min(t[0] for t in times), min(t[1] for t in times)


def fv_step_time(fn: Callable, render: Callable, v: torch.Tensor, x: torch.Tensor, repeats: int) -> float:
    """Seconds per Adam step (forward, backward, update) on a batch of params ``v``."""
    v = v.clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=0.05)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (-objective(x, fn(render(v)), 2).sum()).backward()
        opt.step()

    return best_time(step, repeats)[1]


def bench_case(
    name: str,
    model: torch.nn.Module,
    layer: str,
    shape: tuple[int, int, int],
    n_f: int,
    batch: int,
    steps: int,
    repeats: int,
    jacobian_batches: tuple[int, ...] = (1,),
) -> list[str]:
    fn = feature_fn(model, layer, "maxpool_mean", n_f)
    gen = torch.Generator().manual_seed(0)
    v, render = init_params("fft_energy", shape, max(batch, max(jacobian_batches)), gen, std=0.1)
    check = jacobian_batched(fn, render, v[:2])
    assert torch.allclose(check, jacobian_loop(fn, render, v[:2]), atol=1e-4 * check.abs().max())
    rows = []
    for b in jacobian_batches:
        cpu_loop, wall_loop = best_time(lambda b=b: jacobian_loop(fn, render, v[:b]), repeats)
        cpu_bat, wall_bat = best_time(lambda b=b: jacobian_batched(fn, render, v[:b]), repeats)
        rows += [
            f"| {name} | Jacobian of {b} realization(s), n_f = {n_f}: loop of {n_f} backward passes "
            f"| {cpu_loop:.3f} CPU-s ({wall_loop:.3f} s wall) | |",
            f"| {name} | same, batched VJPs (`is_grads_batched`) | {cpu_bat:.3f} CPU-s ({wall_bat:.3f} s wall) "
            f"| {cpu_loop / cpu_bat:.2f}x CPU ({wall_loop / wall_bat:.2f}x wall) |",
        ]
    x = make_targets(batch, n_f, False, gen)["targets"]
    t_step = fv_step_time(fn, render, v[:batch], x, repeats)
    rate = batch / (t_step * steps)
    log.info("%s done", name)
    return rows + [
        f"| {name} | FV Adam step, batch {batch} | {t_step:.3f} s wall | |",
        f"| {name} | FV throughput at {steps} steps | {rate:.4f} realizations/s | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--googlenet", action="store_true", help="also the 224 x 224 GoogLeNet case (minutes)")
    parser.add_argument("--n-f", type=int, default=32, help="features of inception4c in the GoogLeNet case")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = ["| case | what | time | batched speed-up |", "|---|---|---|---|"]
    small = build_model(ModelSpec(arch="smallcnn", dataset="planted", width=16), (3, 32, 32), 8).eval()
    rows += bench_case("smallcnn 32x32 block3.1", small, "block3.1", (3, 32, 32), 16, 24, 300, args.repeats, (1, 16))
    if args.googlenet:
        spec = ModelSpec(arch="googlenet", dataset="imagenet", cifar_stem=False)
        googlenet = build_model(spec, (3, 224, 224), 1000).eval()
        rows += bench_case(
            "googlenet 224x224 inception4c", googlenet, "inception4c", (3, 224, 224), args.n_f, 2, 3500, args.repeats
        )
    log.info("torch %s, %d threads, CPU\n%s", torch.__version__, args.threads, "\n".join(rows))


if __name__ == "__main__":
    main()
