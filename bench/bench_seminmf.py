"""Semi-NMF benchmark: featflow's fit (``featflow.dictionary.seminmf``, the call the dictionary stage makes through
``method("seminmf").fit``) against overcomplete's ``SemiNMF`` (multiplicative code updates, Ding et al. 2010).

Run: ``nice -n 5 .venv/bin/python bench/bench_seminmf.py --overcomplete DIR`` where DIR holds an unpacked
overcomplete wheel (``pip download overcomplete==0.3.0 --no-deps`` then unzip: overcomplete requires opencv, so it
is no dependency of featflow; its module files are loaded without its package ``__init__``, which imports cv2 and
matplotlib's removed ``get_cmap``). ``--sizes default`` for the default size only. Prints a markdown section.

Threads: OMP / MKL / OpenBLAS at 1 before numpy loads, threadpoolctl at 1 and torch.set_num_threads(1). Times are
CPU seconds of this process (the machine is shared), 3 repeats, min / median. Data: signed planted activations
(96 sparse non-negative codes on signed atoms plus noise), float32 on both sides.

- overcomplete: ``SemiNMF(k).fit(A, max_iter)`` with its defaults (tol 1e-4 on the codes' relative change, at most
  500 iterations) at the default size; a fixed number of iterations at the research width.
- featflow: the same data and k; plain Semi-NMF (code_ridge 0, overcomplete's objective) and the stage's default
  ridge (0.01, which also pays its penalty). Equal error: a fresh fit stopped at the first iteration whose
  relative error reaches overcomplete's (found once on a trace whose error evaluations are not timed, then timed
  3 times without them).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchutil import cpu_runs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow.dictionary.nmf import relative_error  # noqa: E402
from featflow.dictionary.seminmf import fit_seminmf  # noqa: E402

SIZES = {"default": (4000, 64, 128), "research": (20000, 512, 2048)}
RESEARCH_ITERATIONS = 5  # overcomplete's iterations at the research width (one takes minutes of CPU)


def signed_activations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Signed activations with a planted structure: 96 signed atoms, sparse exponential codes, noise."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((96, d))
    codes = rng.exponential(1.0, (n, 96)) * (rng.random((n, 96)) < 0.1)
    return (codes @ atoms + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def load_overcomplete(root: Path) -> types.ModuleType:
    """overcomplete/optimization/semi_nmf.py from an unpacked wheel, its packages stood in for by empty modules."""
    for name in ("overcomplete", "overcomplete.optimization"):
        stub = types.ModuleType(name)
        stub.__path__ = [str(root.joinpath(*name.split(".")))]
        sys.modules[name] = stub
    return importlib.import_module("overcomplete.optimization.semi_nmf")


def first_reaching(a: torch.Tensor, k: int, target: float, ridge: float, cap: int) -> int | None:
    """The first iteration at which the fit's relative error is <= target (None: not within ``cap``)."""
    reached: list[int] = []

    def check(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        if relative_error(a, codes, atoms) <= target:
            reached.append(it)
            return True
        return False

    fit_seminmf(a, k, cap, 0.0, torch.Generator().manual_seed(0), ridge, callback=check)
    return reached[0] if reached else None


def timed(run: Callable[[], tuple[torch.Tensor, torch.Tensor]], a: torch.Tensor) -> tuple[float, float, float]:
    """(min, median CPU seconds of 3 runs, relative error of the last)."""
    (codes, atoms), times = cpu_runs(run)
    return min(times), statistics.median(times), relative_error(a, codes, atoms)


def section(size: str, semi_nmf: types.ModuleType) -> list[str]:
    n, d, k = SIZES[size]
    a = torch.from_numpy(signed_activations(n, d))
    fixed = None if size == "default" else RESEARCH_ITERATIONS

    def reference() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = semi_nmf.SemiNMF(k) if fixed is None else semi_nmf.SemiNMF(k, tol=0.0)
        return model.fit(a, max_iter=500 if fixed is None else fixed)

    ref_best, ref_median, ref_error = timed(reference, a)
    rows = [
        f"### n {n:,}, d {d}, k {k:,} (float32, 1 thread)",
        "",
        "| fit | iterations | CPU s min / median | relative error |",
        "|---|---|---|---|",
        f"| overcomplete SemiNMF ({'defaults' if fixed is None else f'{fixed} iterations'}) | "
        f"{'<= 500' if fixed is None else fixed} | {ref_best:.2f} / {ref_median:.2f} | {ref_error:.4f} |",
    ]
    if fixed is None:  # the stage's own call: the default config's keys (iterations 100, tol 1e-4, code_ridge 0.01)
        best, median, error = timed(_ours(a, k, 100, 0.01, tol=1e-4), a)
        rows.append(
            f"| featflow, the stage's defaults (tol 1e-4, code_ridge 0.01) | <= 100 | {best:.2f} / {median:.2f} "
            f"| {error:.4f} |"
        )
    cap = 500 if fixed is None else 3 * fixed
    for ridge in (0.0, 0.01):
        its = first_reaching(a, k, ref_error, ridge, cap)
        if its is None:
            rows.append(f"| featflow, code_ridge {ridge} | not within {cap} | - | - |")
            continue
        best, median, error = timed(_ours(a, k, its, ridge), a)
        rows.append(f"| featflow, code_ridge {ridge}, equal error | {its} | {best:.2f} / {median:.2f} | {error:.4f} |")
    return [*rows, ""]


def _ours(
    a: torch.Tensor, k: int, iterations: int, ridge: float, tol: float = 0.0
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A fresh featflow fit of at most ``iterations`` (tol 0: exactly), seeded as the trace was."""

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        fit = fit_seminmf(a, k, iterations, tol, torch.Generator().manual_seed(0), ridge)
        return fit.codes, fit.atoms

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overcomplete", type=Path, required=True, help="unpacked overcomplete wheel")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    semi_nmf = load_overcomplete(args.overcomplete)
    version = next(args.overcomplete.glob("overcomplete-*.dist-info")).name.removesuffix(".dist-info").split("-")[1]
    out = [
        f"## Semi-NMF ({datetime.date.today()}, {platform.processor() or platform.machine()}, torch "
        f"{torch.__version__}, numpy {np.__version__}, overcomplete {version}, 1 thread each, CPU seconds, "
        "3 runs)",
        "",
    ]
    with threadpool_limits(limits=1):
        for size in args.sizes:
            out += section(size, semi_nmf)
            print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
