"""NMF benchmark on the path ``make run`` executes: the dictionary stage's fit against scikit-learn's cd and mu.

Run: ``nice -n 5 .venv/bin/python bench/bench_nmf.py`` (``--sizes default`` for the default size only; ``--cap``
the reference's CPU seconds at the research widths; ``--sizes smoke`` a one-minute check of that code at n 3,000,
d 64, k 256). Prints the markdown section for bench/RESULTS.md.

Threads: OMP / MKL / OpenBLAS at 1 before numpy loads, threadpoolctl at 1 and torch.set_num_threads(1). Times are
CPU seconds of this process (``time.process_time``: the machine is shared), 3 repeats, min / median. Data: the
planted non-negative activations of `benchutil.activations` (96 sparse atoms plus noise), float32 on both sides
(scikit-learn's fastest dtype).

- The stage's call: :func:`featflow.dictionary.nmf.fit_nmf` with the default config's ``complexity.dictionary``
  keys (k, iterations, solver, tol, code_ridge) and the float32 matrix, as the NMF method's fit calls it.
- Equal error. Every run's time is that of a fresh run stopped at the first iteration that reaches the target
  (found once on a trace whose own error evaluations are not timed, then timed 3 times without them).
  Objectives: the stage minimizes ``||A - Z D||^2 + mu ||Z||^2`` with unit atoms, which no reference solves;
  scikit-learn minimizes ``||A - Z D||^2``. The rows compare (1) the stage's path against scikit-learn at equal
  reconstruction error (the stage also pays its penalty: conservative for featflow), (2) plain NMF on both sides
  (the same call with ridge 0: identical objectives), (3) the ridge path with and without HER extrapolation at
  equal own objective F (the default is the faster one).
- Research widths: scikit-learn runs for about ``--cap`` CPU seconds (whole iterations); featflow's time to reach
  the error it reached, and featflow's error after the same CPU time (equal time).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from benchutil import activations  # noqa: E402
from sklearn.decomposition import NMF  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow.dictionary.nmf import (  # noqa: E402
    NMFDictionary,
    default_extrapolation,  # noqa: E402
    fit_nmf,
)

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
SIZES = {"default": (2000, 64, 128), "10k": (10000, 512, 2048), "50k": (50000, 512, 2048), "smoke": (3000, 64, 256)}
REPEATS = 3


@dataclass(frozen=True)
class Stage:
    """The default config's ``complexity.dictionary`` keys the fit reads."""

    k: int
    iterations: int
    solver: str
    tol: float
    ridge: float

    @classmethod
    def default(cls) -> Stage:
        ds = yaml.safe_load(CONFIG.read_text())["complexity"]["dictionary"]
        if ds["batch_size"] is not None or ds["positions"]:
            raise SystemExit("bench_nmf: the default config no longer fits full batch on images; update the bench")
        return cls(ds["k"], ds["iterations"], ds["solver"], float(ds["tol"]), float(ds["code_ridge"]))


@dataclass(frozen=True)
class Timing:
    """CPU seconds of ``REPEATS`` fresh runs (min, median), the iterations run and the result's errors."""

    best: float
    median: float
    iterations: int
    error: float  # relative reconstruction error ||A - Z D|| / ||A||
    objective: float  # F / ||A||^2 at the run's ridge (its own objective)

    def cell(self) -> str:
        return f"{self.best:.2f} / {self.median:.2f} s ({self.iterations} it.)"


def measures(a: torch.Tensor, codes: torch.Tensor, atoms: torch.Tensor, ridge: float) -> tuple[float, float]:
    """(relative error, F / ||A||^2) of a factorization, F with unit atoms (the codes rescaled to match)."""
    norms = atoms.double().norm(dim=1).clamp_min(1e-12)
    z = codes.double() * norms
    norm2 = float(a.double().square().sum())
    rec = float((a.double() - z @ (atoms.double() / norms[:, None])).square().sum())
    return (rec / norm2) ** 0.5, (rec + ridge * float(z.square().sum())) / norm2


def encoded(a: torch.Tensor, atoms: torch.Tensor, ridge: float) -> float:
    """F / ||A||^2 of a dictionary with the stage's encoder's codes (ridge NNLS at a 1e-6 relative gap, float64):
    the stage re-encodes its codes with the final atoms, so this is what its dictionary delivers."""
    unit = atoms.double() / atoms.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    codes = NMFDictionary(unit, 5000, ridge, 1e-6).encode(a.double())
    return measures(a, codes, unit, ridge)[1]


def sklearn_best_encoded(x: np.ndarray, k: int, solver: str, ridge: float, limit: int, chunk: int) -> tuple[int, float]:
    """(iteration, F / ||A||^2) where scikit-learn's dictionary, encoded as the stage encodes, is best within
    ``limit`` iterations (checked every ``chunk``)."""
    a = torch.from_numpy(x)
    state, done, best = None, 0, (0, math.inf)
    while done < limit:
        w, h = sklearn_fit(x, k, solver, chunk, state)
        state, done = (w, h), done + chunk
        best = min(best, (done, encoded(a, torch.from_numpy(h), ridge)), key=lambda pair: pair[1])
    return best


def repeat(run: Callable[[], tuple[torch.Tensor, torch.Tensor]], a: torch.Tensor, ridge: float, its: int) -> Timing:
    """``REPEATS`` timed calls of ``run`` (codes, atoms)."""
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        codes, atoms = run()
        times.append(time.process_time() - start)
    error, objective = measures(a, codes, atoms, ridge)
    return Timing(min(times), statistics.median(times), its, error, objective)


def ours(a: torch.Tensor, stage: Stage, iterations: int, ridge: float, extrapolate: bool | None, tol: float) -> Timing:
    """The stage's call at ``iterations``, ``ridge``, ``tol`` (its own where it runs as the stage does)."""

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        fit = fit_nmf(a, stage.k, iterations, stage.solver, tol, gen, ridge, extrapolate=extrapolate)
        return fit.codes, fit.atoms

    return repeat(run, a, ridge, iterations)


def trace(
    a: torch.Tensor, stage: Stage, ridge: float, extrapolate: bool | None, stop: Callable[[float, float, float], bool]
) -> list[tuple[int, float, float, float]]:
    """[(iteration, CPU s, error, F / ||A||^2)] of one traced fit until ``stop(cpu, error, objective)``; the
    trace's own evaluations are not counted."""
    rows: list[tuple[int, float, float, float]] = []
    spent = [0.0]
    start = time.process_time()

    def callback(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        now = time.process_time()
        error, objective = measures(a, codes, atoms, ridge)
        rows.append((it, now - start - spent[0], error, objective))
        spent[0] += time.process_time() - now
        return stop(*rows[-1][1:])

    gen = torch.Generator().manual_seed(0)
    fit_nmf(a, stage.k, 100000, stage.solver, 0.0, gen, ridge, callback=callback, extrapolate=extrapolate)
    return rows


def first(rows: list[tuple[int, float, float, float]], target: float, key: int) -> int | None:
    """First iteration whose measure ``key`` (2 error, 3 objective) is <= ``target``."""
    return next((row[0] for row in rows if row[key] <= target), None)


def at_time(rows: list[tuple[int, float, float, float]], budget: float) -> float:
    """Error of the last iteration done within ``budget`` CPU seconds."""
    done = [row for row in rows if row[1] <= budget]
    return done[-1][2] if done else 1.0


def sklearn_fit(x: np.ndarray, k: int, solver: str, iterations: int, init=None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn NMF (init random, seed 0, tol 0), or continued from ``init`` (W, H)."""
    kwargs = {"init": "custom"} if init is not None else {"init": "random", "random_state": 0}
    model = NMF(n_components=k, solver=solver, max_iter=iterations, tol=0.0, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if init is None:
            w = model.fit_transform(x)
        else:
            w = model.fit_transform(x, W=init[0].copy(), H=init[1].copy())
    return w, model.components_


def sklearn_reach(x: np.ndarray, k: int, solver: str, target: float, cap: int, chunk: int) -> int | None:
    """First iteration (a multiple of ``chunk``, then refined to one) at which scikit-learn's error is <= target."""
    a = torch.from_numpy(x)
    state, done = None, 0
    while done < cap:
        w, h = sklearn_fit(x, k, solver, chunk, state)
        if measures(a, torch.from_numpy(w), torch.from_numpy(h), 0.0)[0] <= target:
            for it in range(1, chunk + 1):  # refine within the chunk (from the chunk's start)
                w1, h1 = sklearn_fit(x, k, solver, it, state)
                if measures(a, torch.from_numpy(w1), torch.from_numpy(h1), 0.0)[0] <= target:
                    return done + it
        state, done = (w, h), done + chunk
    return None


def theirs(x: np.ndarray, k: int, solver: str, iterations: int) -> Timing:
    a = torch.from_numpy(x)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        w, h = sklearn_fit(x, k, solver, iterations)
        return torch.from_numpy(w), torch.from_numpy(h)

    return repeat(run, a, 0.0, iterations)


def ratio(ref: Timing, mine: Timing) -> str:
    return f"**{ref.best / mine.best:.1f}x** / {ref.median / mine.median:.1f}x"


def stage_atoms(a: torch.Tensor, stage: Stage) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return fit_nmf(a, stage.k, stage.iterations, stage.solver, stage.tol, gen, stage.ridge).atoms


def default_size(rows: list[str], stage: Stage, n: int, d: int) -> None:
    """The stage's call vs scikit-learn at equal error; plain NMF on both sides; HER on the ridge path."""
    x = activations(n, d).astype(np.float32)
    a = torch.from_numpy(x)
    size = f"n {n:,}, d {d}, k {stage.k}"
    fit = ours(a, stage, stage.iterations, stage.ridge, None, stage.tol)
    target = fit.error
    rows.append(
        f"| {size}: **the stage's call** (ridge {stage.ridge:g}, tol {stage.tol:g}) | {fit.cell()}, error "
        f"{fit.error:.4f}, F {fit.objective:.5f} | | | the default's fit as `make run` runs it |"
    )
    plain_its = first(trace(a, stage, 0.0, None, lambda cpu, err, obj: err <= target or cpu > 30), target, 2)
    plain = ours(a, stage, plain_its, 0.0, None, 0.0) if plain_its else None
    for solver, chunk, limit in (("cd", 10, 2000), ("mu", 50, 20000)):
        its = sklearn_reach(x, stage.k, solver, target, limit, chunk)
        if its is None:
            rows.append(f"| {size}: to error {target:.4f} | | sklearn {solver}: not within {limit} it. | | |")
            continue
        ref = theirs(x, stage.k, solver, its)
        rows.append(
            f"| {size}: the stage's path to error {target:.4f} | {fit.cell()} | sklearn {solver} {ref.cell()} | "
            f"{ratio(ref, fit)} | reconstruction error; the ridge fit also pays its penalty |"
        )
        if plain is not None:
            rows.append(
                f"| {size}: plain NMF both sides (ridge 0) to error {target:.4f} | {plain.cell()} | sklearn "
                f"{solver} {ref.cell()} | {ratio(ref, plain)} | same objective |"
            )
    stage_e = encoded(a, stage_atoms(a, stage), stage.ridge)
    for solver, chunk, limit in (("cd", 10, 300), ("mu", 50, 2000)):
        its, best = sklearn_best_encoded(x, stage.k, solver, stage.ridge, limit, chunk)
        reach = first(trace(a, stage, stage.ridge, None, lambda cpu, err, obj, b=best: obj <= b or cpu > 30), best, 3)
        if reach is None:
            rows.append(f"| {size}: the stage's path to F {best:.5f} | not within 30 CPU s | | | |")
            continue
        ref, mine = theirs(x, stage.k, solver, its), ours(a, stage, reach, stage.ridge, None, 0.0)
        rows.append(
            f"| {size}: the stage's objective F = error^2 + mu codes^2 (unit atoms), sklearn's dictionary "
            f"encoded by the stage's encoder: its best within {limit} it. (F {best:.5f}) | {mine.cell()} (F of its "
            f"own codes) | sklearn {solver} {ref.cell()} | {ratio(ref, mine)} | equal own objective; the stage's "
            f"dictionary, encoded: F {stage_e:.5f} ({'below' if stage_e < best else 'not below'} sklearn's best) |"
        )
    goal = fit.objective
    no_her = first(trace(a, stage, stage.ridge, False, lambda cpu, err, obj: obj <= goal or cpu > 30), goal, 3)
    if no_her is None:
        rows.append(f"| {size}: the ridge path without HER to F {goal:.5f} | not within 30 CPU s | | | |")
    else:
        other = ours(a, stage, no_her, stage.ridge, False, 0.0)
        rows.append(
            f"| {size}: the stage's path to its F {goal:.5f}, HER (default) | {fit.cell()} | without HER "
            f"{other.cell()} | {ratio(other, fit)} | equal own objective |"
        )


def research_width(rows: list[str], stage: Stage, n: int, d: int, k: int, cap: float) -> None:
    """scikit-learn for about ``cap`` CPU seconds; featflow's time to its error and its error at equal time."""
    x = activations(n, d).astype(np.float32)
    a = torch.from_numpy(x)
    wide = Stage(k, stage.iterations, stage.solver, stage.tol, stage.ridge)
    size = f"n {n:,}, d {d}, k {k}"
    refs = {}
    for solver in ("mu", "cd"):
        start = time.process_time()
        sklearn_fit(x, k, solver, 1)
        probe = time.process_time() - start
        if probe > 2 * cap:  # one iteration already far beyond the cap: not repeated
            rows.append(
                f"| {size}: sklearn {solver}, one iteration | | {probe:.0f} CPU s (1 run) | | beyond 2x the cap |"
            )
            continue
        its = max(1, round(cap / probe))
        refs[solver] = (its, theirs(x, k, solver, its))
    budget = max(ref.median for _, ref in refs.values())
    timed: dict[tuple[float, int], Timing] = {}
    for label, ridge in (("the stage's path", stage.ridge), ("plain NMF both sides (ridge 0)", 0.0)):
        rows_default = trace(a, wide, ridge, None, lambda cpu, err, obj, b=budget: cpu > b)
        for solver, (its, ref) in refs.items():
            reach = first(rows_default, ref.error, 2)
            if reach is None:
                rows.append(f"| {size}: {label} to error {ref.error:.4f} | not within {budget:.0f} CPU s | | | |")
                continue
            if (ridge, reach) not in timed:  # fresh runs of the same length are timed once
                timed[ridge, reach] = ours(a, wide, reach, ridge, None, 0.0)
            mine = timed[ridge, reach]
            rows.append(
                f"| {size}: {label} to sklearn {solver}'s error after {its} it. ({ref.error:.4f}) | {mine.cell()} "
                f"| sklearn {solver} {ref.cell()} | {ratio(ref, mine)} | equal time ({ref.median:.1f} CPU s): "
                f"featflow error {at_time(rows_default, ref.median):.4f} |"
            )
        if ridge > 0:  # the default's choice: HER against plain accelerated HALS at equal CPU time
            flag = default_extrapolation(n, d, k)
            rows_other = trace(a, wide, ridge, not flag, lambda cpu, err, obj, b=budget: cpu > b)
            errors = {flag: at_time(rows_default, budget), not flag: at_time(rows_other, budget)}
            rows.append(
                f"| {size}: the stage's path, error after {budget:.0f} CPU s | plain accelerated HALS "
                f"{errors[False]:.4f} | with HER {errors[True]:.4f} | | default: {'HER' if flag else 'plain'} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="default,10k,50k", help=f"comma-separated of {sorted(SIZES)}")
    parser.add_argument("--cap", type=float, default=60.0, help="reference CPU seconds at the research widths")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stage = Stage.default()
    rows = [
        "| benchmark | featflow (min / median CPU s) | reference (min / median CPU s) | ratio (min / median) | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        for name in args.sizes.split(","):
            n, d, k = SIZES[name]
            if name == "default":
                default_size(rows, stage, n, d)
            else:
                research_width(rows, stage, n, d, k, args.cap)
            print("\n".join(rows), flush=True, file=sys.stderr)
    missing = [name for name in ("torchnmf", "overcomplete") if importlib.util.find_spec(name) is None]
    print(
        f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}`, {datetime.datetime.now(datetime.UTC):%Y-%m-%d}, "
        f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, shared), 1 thread each side; torch "
        f"{torch.__version__}, numpy {np.__version__}, scikit-learn {sklearn.__version__}; "
        f"not installed: {', '.join(missing) or 'none'}; whole run {time.perf_counter() - started:.0f} s wall\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
