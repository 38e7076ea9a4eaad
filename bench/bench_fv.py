"""Benchmark of the FV/IFV branch: batched Jacobian vs a loop of n_f backward passes, and FV throughput.

Sizes: the default small CNN (32 x 32, block3.1, n_f 16) and a GoogLeNet-inception4c-like setting
(torchvision GoogLeNet, random init, no download, 224 x 224, fft_energy). Run:
    .venv/bin/python bench/bench_fv.py [--threads 2] [--n-f 32] [--repeats 3]
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


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fv_step_time(fn: Callable, render: Callable, v: torch.Tensor, x: torch.Tensor, repeats: int) -> float:
    """Seconds per Adam step (forward, backward, update) on a batch of params ``v``."""
    v = v.clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=0.05)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (-objective(x, fn(render(v)), 2).sum()).backward()
        opt.step()

    return best_time(step, repeats)


def bench_case(
    name: str,
    model: torch.nn.Module,
    layer: str,
    shape: tuple[int, int, int],
    n_f: int,
    batch: int,
    steps: int,
    repeats: int,
) -> list[str]:
    fn = feature_fn(model, layer, "maxpool_mean", n_f)
    gen = torch.Generator().manual_seed(0)
    v, render = init_params("fft_energy", shape, batch, gen, std=0.1)
    check = jacobian_batched(fn, render, v[:1])
    assert torch.allclose(check, jacobian_loop(fn, render, v[:1]), atol=1e-4 * check.abs().max())
    t_loop = best_time(lambda: jacobian_loop(fn, render, v[:1]), repeats)
    t_batched = best_time(lambda: jacobian_batched(fn, render, v[:1]), repeats)
    x = make_targets(batch, n_f, False, gen)["targets"]
    t_step = fv_step_time(fn, render, v, x, repeats)
    rate = batch / (t_step * steps)
    log.info("%s done", name)
    return [
        f"| {name} | Jacobian, 1 realization, n_f = {n_f}: loop of {n_f} backward passes | {t_loop:.3f} s | |",
        f"| {name} | Jacobian, batched VJPs (`is_grads_batched`) | {t_batched:.3f} s | {t_loop / t_batched:.2f}x |",
        f"| {name} | FV Adam step, batch {batch} | {t_step:.3f} s | |",
        f"| {name} | FV throughput at {steps} steps | {rate:.4f} realizations/s | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-f", type=int, default=32, help="features of inception4c in the GoogLeNet case")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = ["| case | what | time | batched speed-up |", "|---|---|---|---|"]
    small = build_model(ModelSpec(arch="smallcnn", dataset="planted", width=16), (3, 32, 32), 8)
    rows += bench_case("smallcnn 32x32 block3.1", small, "block3.1", (3, 32, 32), 16, 24, 300, args.repeats)
    googlenet = build_model(ModelSpec(arch="googlenet", dataset="imagenet", cifar_stem=False), (3, 224, 224), 1000)
    rows += bench_case(
        "googlenet 224x224 inception4c", googlenet, "inception4c", (3, 224, 224), args.n_f, 2, 3500, args.repeats
    )
    log.info("torch %s, %d threads, CPU\n%s", torch.__version__, args.threads, "\n".join(rows))


if __name__ == "__main__":
    main()
