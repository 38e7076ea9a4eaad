"""GPU figures (issue 16, item 7), one run on one device: GoogLeNet inception4c Jacobian per realization, batched
NNLS codes vs scipy at equal accuracy, NMF seconds per iteration, FV steps/s and ResNet-50 activations images/s.

Run through ``bench/gpu.sh`` (date, GPU name, 5-minute limit); ``--quick`` shrinks every size for a CPU smoke
test. Random weights throughout (nothing is downloaded). Prints one markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from featflow import store
from featflow.activations import extract_to_h5, pool
from featflow.config import ActivationsSpec, ModelSpec
from featflow.dictionary.nmf import fit_nmf
from featflow.fv.objectives import objective
from featflow.fv.optimize import feature_fn
from featflow.fv.param import init_params
from featflow.fv.targets import make_targets
from featflow.ifv.jacobian import jacobian_batched
from featflow.metrics.nnls import nnls_codes
from featflow.models import build_model, capture
from featflow.models.checkpoint import save_checkpoint


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: the issue's (full) or a CPU smoke test's (quick)."""

    image: int  # GoogLeNet / FV / ResNet-50 input side
    n_f: int  # Jacobian features of inception4c
    fv_batch: int
    nnls_n: int  # samples coded by featflow
    nnls_ref: int  # of which scipy codes this many
    nnls_k: int
    nnls_d: int
    nmf_n: int
    nmf_k: int
    nmf_d: int
    act_n: int  # ResNet-50 images
    act_batch: int


FULL = Sizes(224, 512, 8, 16384, 32, 1024, 512, 20000, 10000, 2048, 2048, 256)
QUICK = Sizes(48, 8, 1, 256, 8, 32, 16, 128, 64, 32, 8, 8)


def timed(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> tuple[object, float]:
    """(result, best wall time of ``repeats`` calls after a warm-up), synchronizing the device."""
    result = fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return result, best


def googlenet(device: torch.device, size: int) -> torch.nn.Module:
    spec = ModelSpec(arch="googlenet", dataset="imagenet", cifar_stem=False)
    return build_model(spec, (3, size, size), 1000).to(device).eval()


def jacobian_row(s: Sizes, device: torch.device, chunk: int | None) -> str:
    fn = feature_fn(googlenet(device, s.image), "inception4c", "maxpool_mean", s.n_f)
    v, render = init_params("fft_energy", (3, s.image, s.image), 1, torch.Generator().manual_seed(0), std=0.1)
    jac, seconds = timed(lambda: jacobian_batched(fn, render, v.to(device), chunk), device)
    what = f"GoogLeNet inception4c Jacobian, {s.image} px, n_f = {s.n_f}, Dy {tuple(jac.shape)}"
    return f"| {what} | {seconds:.3f} s per realization |"


def fv_row(s: Sizes, device: torch.device) -> str:
    fn = feature_fn(googlenet(device, s.image), "inception4c", "maxpool_mean", s.n_f)
    gen = torch.Generator().manual_seed(0)
    v, render = init_params("fft_energy", (3, s.image, s.image), s.fv_batch, gen, std=0.1)
    v = v.to(device).requires_grad_(True)
    x = make_targets(s.fv_batch, s.n_f, False, gen)["targets"].to(device)
    opt = torch.optim.Adam([v], lr=0.05)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (-objective(x, fn(render(v)), 2).sum()).backward()
        opt.step()

    _, seconds = timed(step, device, repeats=5)
    what = f"FV Adam steps, GoogLeNet inception4c, {s.image} px, batch {s.fv_batch}"
    return f"| {what} | {1 / seconds:.1f} steps/s ({s.fv_batch / seconds:.1f} image steps/s) |"


def nnls_row(s: Sizes, device: torch.device) -> str:
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    atoms = rng.random((s.nnls_k, s.nnls_d)) ** 4  # non-negative, coherent, like NMF atoms
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    a = rng.random((s.nnls_n, s.nnls_k)) ** 8 @ atoms + 0.01 * rng.random((s.nnls_n, s.nnls_d))
    start = time.perf_counter()
    ref = np.stack([nnls(atoms.T, row, maxiter=50 * s.nnls_k)[0] for row in a[: s.nnls_ref]])
    ref_rate = s.nnls_ref / (time.perf_counter() - start)
    a_t, atoms_t = torch.from_numpy(a).float().to(device), torch.from_numpy(atoms).float().to(device)
    codes, seconds = timed(lambda: nnls_codes(a_t, atoms_t, iterations=300, tol=0.0), device, repeats=2)
    ours = codes[: s.nnls_ref].double().cpu().numpy()
    residual = np.linalg.norm(a[: s.nnls_ref] - ours @ atoms, axis=1) ** 2
    best = np.linalg.norm(a[: s.nnls_ref] - ref @ atoms, axis=1) ** 2
    excess = np.median((residual - best) / np.linalg.norm(a[: s.nnls_ref], axis=1) ** 2)
    rate = s.nnls_n / seconds
    return (
        f"| codes, k = {s.nnls_k}, d = {s.nnls_d}: batched NNLS (float32, 300 it.) vs scipy nnls (float64, per sample)"
        f" | {rate:,.0f} vs {ref_rate:,.1f} samples/s = {rate / ref_rate:.3g}x; median excess relative residual "
        f"{excess:.1e} |"
    )


def nmf_row(s: Sizes, device: torch.device) -> str:
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.rand((s.nmf_n, s.nmf_d), generator=gen, device=device) ** 4

    def run(iterations: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fit_nmf(a, s.nmf_k, iterations=iterations, tol=0.0, generator=torch.Generator(device=device).manual_seed(0))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    run(1)  # warm-up
    per_iteration = (run(4) - run(1)) / 3  # initialization and error checks cancel out
    return f"| NMF (HALS), n = {s.nmf_n}, k = {s.nmf_k}, d = {s.nmf_d} | {per_iteration:.3f} s per iteration |"


def activations_row(s: Sizes, device: torch.device, workdir: Path) -> str:
    rng = np.random.default_rng(0)
    data = workdir / "images.h5"
    split = {
        "x": rng.integers(0, 256, (s.act_n, 3, s.image, s.image), dtype=np.uint8),
        "y": np.zeros(s.act_n, np.int64),
    }
    store.write_h5(
        data, "dataset", {"train": split, "test": split}, {"classes": [str(i) for i in range(1000)], "factor_names": []}
    )
    spec = ModelSpec(arch="resnet50", dataset="images", cifar_stem=False)
    save_checkpoint(
        workdir / "r50.pt", build_model(spec, (3, s.image, s.image), 1000), spec, (3, s.image, s.image), 1000, {}
    )
    act = ActivationsSpec(batch_size=s.act_batch)
    layers = ["layer1", "layer2", "layer3", "layer4", "avgpool"]

    def run() -> None:
        extract_to_h5(workdir / "r50.pt", data, "test", layers, act, workdir / "a.h5", device=device, attrs={})

    _, seconds = timed(run, device, repeats=2)
    model = build_model(spec, (3, s.image, s.image), 1000).to(device).eval()
    x = torch.rand((s.act_batch, 3, s.image, s.image), device=device)

    @torch.no_grad()
    def forward() -> None:
        with capture(model, layers) as outputs:
            model(x)
            for name in layers:
                pool(outputs[name], "gap").cpu()

    _, batch_seconds = timed(forward, device)
    what = f"activations, ResNet-50 (random), {s.image} px, 5 layers pooled, batch {s.act_batch}"
    return (
        f"| {what}: extract_to_h5 of {s.act_n} images (checkpoint load, HDF5 in, appended out) / forward only | "
        f"{s.act_n / seconds:,.0f} / {s.act_batch / batch_seconds:,.0f} images/s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs on a CPU")
    parser.add_argument("--feature-chunk", type=int, default=128, help="cotangents vmapped at once (Jacobian)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"featflow bench/gpu.sh{' --quick' if args.quick else ''}: {where}, torch {torch.__version__}")
    print("| measurement | result |")
    print("|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for row in (
            lambda: jacobian_row(sizes, device, args.feature_chunk),
            lambda: nnls_row(sizes, device),
            lambda: nmf_row(sizes, device),
            lambda: fv_row(sizes, device),
            lambda: activations_row(sizes, device, Path(tmp)),
        ):
            print(row(), flush=True)


if __name__ == "__main__":
    main()
