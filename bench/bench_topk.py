"""TopK SAE benchmark: featflow's fit (``featflow.dictionary.topk``, the call the dictionary stage makes through
``method("topk").fit``) against overcomplete's ``TopKSAE`` trained by its ``train_sae`` loop.

Run: ``nice -n 5 .venv/bin/python bench/bench_topk.py --overcomplete DIR`` where DIR holds an unpacked overcomplete
wheel (``pip download overcomplete==0.3.0 --no-deps`` then unzip) and einops is importable (overcomplete requires
opencv, so neither is a dependency of featflow; its module files are loaded without its package ``__init__``).
``--sizes default`` for the default size only. Prints a markdown section.

Threads: OMP / MKL / OpenBLAS at 1 before numpy loads, threadpoolctl at 1 and torch.set_num_threads(1). Times are
CPU seconds of this process (the machine is shared), 3 repeats, min / median. Data: signed planted activations
(bench_seminmf's: 96 sparse non-negative codes on signed atoms plus noise), float32 on both sides; both read the
rows from memory (the stage reads them from HDF5 in the same batches).

- featflow: ``complexity.dictionary.topk`` defaults (active 8, batch 256, Adam lr 1e-3, AuxK d / 2 latents at
  1/32, dead after 200 steps) and the given epochs; its moments pass and final pass (FVU, dead latents) are timed.
- overcomplete: ``TopKSAE(d, k, top_k=active)`` with its default encoder (Linear + ReLU), ``train_sae`` with Adam at
  the same lr, its default gradient clipping (1.0), an MSE criterion, a shuffled DataLoader of the same batch size,
  the same epochs.
- Equal error: both report the FVU of the whole training matrix after training (untimed); at the default size
  featflow's epochs to reach overcomplete's final FVU (at most 3 times as many) are found on untimed fits, then
  timed 3 times.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_seminmf import signed_activations  # noqa: E402
from benchutil import cpu_runs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow.dictionary.base import FitContext, Rows  # noqa: E402
from featflow.dictionary.registry import method  # noqa: E402
from featflow.dictionary.spec import DictionarySpec, TopKSpec  # noqa: E402

SIZES = {"default": (4000, 64, 128, 30), "research": (20000, 512, 4096, 2)}  # n, d, k, epochs
ACTIVE, BATCH = 8, 256


def load_overcomplete(root: Path) -> types.SimpleNamespace:
    """overcomplete's SAE modules from an unpacked wheel, its packages stood in for by empty modules."""
    for name, folder in (("overcomplete", root / "overcomplete"), ("overcomplete.sae", root / "overcomplete" / "sae")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(folder)]
        sys.modules[name] = stub
    sys.modules["overcomplete.sae"].SAE = importlib.import_module("overcomplete.sae.base").SAE
    return types.SimpleNamespace(
        TopKSAE=importlib.import_module("overcomplete.sae.topk_sae").TopKSAE,
        train_sae=importlib.import_module("overcomplete.sae.train").train_sae,
    )


def fvu_dead(a: torch.Tensor, codes: torch.Tensor, recon: torch.Tensor) -> tuple[float, int]:
    """FVU of the whole matrix and the latents never active on it."""
    fvu = float((a - recon).double().pow(2).sum() / (a - a.mean(0)).double().pow(2).sum())
    return fvu, int(((codes > 0).sum(0) == 0).sum())


def ours(a: np.ndarray, k: int, epochs: int, lr: float) -> tuple[float, int, list[float]]:
    spec = DictionarySpec(method="topk", k=k, topk=TopKSpec(active=ACTIVE, epochs=epochs, batch_size=BATCH, lr=lr))
    rows = Rows(a.shape[0], a.shape[1], lambda s: a[s], torch.device("cpu"))

    def fit() -> object:
        return method("topk").fit(rows, spec, FitContext(k, torch.Generator().manual_seed(0), "bench"))

    sae, times = cpu_runs(fit)
    x = torch.from_numpy(a)
    with torch.no_grad():
        codes = sae.encode(x)
        return (*fvu_dead(x, codes, sae.decode(codes)), times)


def theirs(oc: types.SimpleNamespace, a: np.ndarray, k: int, epochs: int, lr: float) -> tuple[float, int, list[float]]:
    x = torch.from_numpy(a)

    def fit() -> object:
        torch.manual_seed(0)
        model = oc.TopKSAE(a.shape[1], k, top_k=ACTIVE)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x),
            batch_size=BATCH,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        oc.train_sae(
            model, loader, lambda x, x_hat, *_: (x - x_hat).square().mean(), optimizer, nb_epochs=epochs, monitoring=0
        )
        return model.eval()

    model, times = cpu_runs(fit)
    with torch.no_grad():
        _, codes = model.encode(x)
        return (*fvu_dead(x, codes, model.decode(codes)), times)


def final_fvu(a: np.ndarray, k: int, epochs: int, lr: float) -> float:
    """featflow's FVU on the whole matrix after ``epochs`` (an untimed fit)."""
    spec = DictionarySpec(method="topk", k=k, topk=TopKSpec(active=ACTIVE, epochs=epochs, batch_size=BATCH, lr=lr))
    rows = Rows(a.shape[0], a.shape[1], lambda s: a[s], torch.device("cpu"))
    sae = method("topk").fit(rows, spec, FitContext(k, torch.Generator().manual_seed(0), "bench"))
    x = torch.from_numpy(a)
    with torch.no_grad():
        codes = sae.encode(x)
        return fvu_dead(x, codes, sae.decode(codes))[0]


def epochs_to_reach(a: np.ndarray, k: int, target: float, most: int, lr: float) -> int | None:
    """featflow's fewest epochs (bisection over 1 .. ``most``, the FVU taken to fall with epochs) whose final FVU
    reaches ``target``; None if ``most`` do not."""
    if final_fvu(a, k, most, lr) > target:
        return None
    low, high = 0, most  # low misses the target (0 epochs: no fit), high reaches it
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if final_fvu(a, k, mid, lr) <= target else (mid, high)
    return high


def fmt(times: list[float]) -> str:
    return f"{min(times):.2f} / {statistics.median(times):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overcomplete", type=Path, required=True, help="folder of an unpacked overcomplete wheel")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--lr", type=float, default=TopKSpec().lr, help="Adam's lr on both sides")
    args = parser.parse_args()
    torch.set_num_threads(1)
    oc = load_overcomplete(args.overcomplete)
    print(f"## TopK SAE ({datetime.date.today()}, {platform.processor() or platform.machine()}, 1 thread)\n")
    print(f"torch {torch.__version__}, numpy {np.__version__}, overcomplete (wheel in {args.overcomplete})\n")
    print("| size (n, d, k, active, epochs) | library | CPU s min / median | FVU | dead latents |")
    print("| --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for size in args.sizes:
            n, d, k, epochs = SIZES[size]
            a = signed_activations(n, d)
            label = f"{size} ({n}, {d}, {k}, {ACTIVE}, {epochs}), lr {args.lr:g}"
            ref_fvu, ref_dead, ref_times = theirs(oc, a, k, epochs, args.lr)
            fvu, dead, times = ours(a, k, epochs, args.lr)
            print(f"| {label} | overcomplete TopKSAE + train_sae | {fmt(ref_times)} | {ref_fvu:.4f} | {ref_dead} |")
            print(f"| {label} | featflow topk | {fmt(times)} | {fvu:.4f} | {dead} |")
            if size == "default":
                reach = epochs_to_reach(a, k, ref_fvu, 3 * epochs, args.lr)
                if reach is not None:
                    fvu, dead, times = ours(a, k, reach, args.lr)
                    print(
                        f"| {size} ({n}, {d}, {k}, {ACTIVE}, {reach}), lr {args.lr:g} | featflow topk, equal FVU "
                        f"| {fmt(times)} | {fvu:.4f} | {dead} |"
                    )
    print()
    print(f"spec: {dataclasses.asdict(TopKSpec())}")


if __name__ == "__main__":
    main()
