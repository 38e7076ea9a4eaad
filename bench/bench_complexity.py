"""Complexity-branch benchmarks, every ratio in one process at equal threads (one each side) and equal accuracy.

Run: ``.venv/bin/python bench/bench_complexity.py`` (CPU; ``--quick`` skips the N 5000, d 512, k 2048 NMF).
Prints the markdown section for bench/RESULTS.md. Threads: torch.set_num_threads(1), and OMP / MKL / OpenBLAS
set to 1 before numpy loads, plus threadpoolctl, so numpy / scipy / scikit-learn run on one thread too. Times
are CPU seconds of this process (``time.process_time``; the machine's load cancels) with wall seconds beside.

- V-information: one factorization against 512 single-output Ridge fits and against ONE multi-output Ridge.
- NMF: time-to-error. Every scikit-learn run (cd and mu, float32 input: its fastest dtype) gives a target, its
  final error; featflow's fit (float32, as the stage runs it) is traced once per iteration (the tracing's own
  error evaluations are not counted) and its time to reach each target is read off the trace.
- Codes: the ridge problem of the stage (code_ridge 1e-2, the atoms of a ridge fit), featflow stopped at a
  certified per-sample relative duality gap of 1e-4 against scipy's per-sample nnls on the augmented system
  [D^T; sqrt(mu) I] z = [a; 0]; the true relative objective gap to scipy's optimum is reported per sample.
- Gradient form of the codes: CPU seconds per iteration through the Gram and through the dictionary by shape.
- Atom map: a fresh interpreter per method (so import and numba compilation count), 128 atoms.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import nnls  # noqa: E402
from sklearn.decomposition import NMF  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow.dictionary import fit_nmf  # noqa: E402
from featflow.metrics.nnls import gradient_form, nnls_codes_report  # noqa: E402
from featflow.metrics.vinfo import ridge_r2, split_indices  # noqa: E402


def timed(fn):
    """(result, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def best_of(fn, repeats: int = 15):
    """(result, best CPU seconds, best wall seconds) of ``repeats`` calls after a warm-up: for calls of a few ms."""
    fn()
    runs = [timed(fn) for _ in range(repeats)]
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def activations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Non-negative activations with a planted sparse structure (96 sparse atoms) plus noise."""
    rng = np.random.default_rng(seed)
    atoms = rng.random((96, d)) * (rng.random((96, d)) < 0.3)
    codes = rng.exponential(1.0, (n, 96)) * (rng.random((n, 96)) < 0.1)
    return codes @ atoms + 0.05 * rng.random((n, d))


def bench_vinfo(rows: list[str]) -> None:
    rng = np.random.default_rng(1)
    n, d, k = 2000, 64, 512
    x = rng.normal(size=(n, d))
    z = np.abs(x @ rng.normal(size=(d, k)) + 3 * rng.normal(size=(n, k)))
    train, test = split_indices(n, 0.2, 0)
    ours, c_ours, w_ours = best_of(lambda: ridge_r2(x, z, train, test))
    xc = x[train] - x[train].mean(0)
    lam = 1e-3 * np.trace(xc.T @ xc) / d

    def per_feature() -> np.ndarray:
        return np.array(
            [r2_score(z[test, i], Ridge(alpha=lam).fit(x[train], z[train, i]).predict(x[test])) for i in range(k)]
        )

    def multi_output() -> np.ndarray:
        pred = Ridge(alpha=lam).fit(x[train], z[train]).predict(x[test])
        return r2_score(z[test], pred, multioutput="raw_values")

    single, c_single, w_single = timed(per_feature)
    multi, c_multi, w_multi = best_of(multi_output)
    rows.append(
        f"| V-information, k = {k}, n = {n}, d = {d} | one factorization {c_ours:.3f} s ({w_ours:.3f} wall) | "
        f"{k} single-output sklearn Ridge fits {c_single:.2f} s ({w_single:.2f}) | {c_single / c_ours:.0f}x | "
        f"max abs R^2 difference {np.abs(ours - single).max():.1e} |"
    )
    rows.append(
        f"| same | same | ONE multi-output sklearn Ridge {c_multi:.3f} s ({w_multi:.3f}) | "
        f"**{c_multi / c_ours:.2f}x** | {np.abs(ours - multi).max():.1e} |"
    )


def ours_trace(a: np.ndarray, k: int, iterations: int, targets: list[float], extrapolate: bool):
    """featflow's float32 fit traced per iteration: [(iteration, CPU s, wall s, relative error)], stopping once
    every target is reached; the trace's own error evaluations are excluded from the times."""
    x = torch.from_numpy(a).float()
    norm = float(x.norm())
    trace: list[tuple[int, float, float, float]] = []
    spent = [0.0, 0.0]
    lowest = min(targets) if targets else -1.0
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def callback(it: int, codes: torch.Tensor, atoms: torch.Tensor) -> bool:
        cpu, wall = time.process_time(), time.perf_counter()
        err = float((x - codes @ atoms).norm()) / norm
        trace.append((it, cpu - cpu0 - spent[0], wall - wall0 - spent[1], err))
        spent[0] += time.process_time() - cpu
        spent[1] += time.perf_counter() - wall
        return err <= lowest

    gen = torch.Generator().manual_seed(0)
    fit_nmf(x, k, iterations, "hals", tol=0.0, generator=gen, callback=callback, extrapolate=extrapolate)
    return trace


def sklearn_runs(a: np.ndarray, k: int, runs: list[tuple[str, int]]) -> list[tuple[str, int, float, float, float]]:
    """[(solver, iterations, CPU s, wall s, relative error)] of scikit-learn NMF (init random, seed 0, tol 0)."""
    out = []
    x = a.astype(np.float32)
    for solver, iters in runs:
        model = NMF(n_components=k, init="random", solver=solver, max_iter=iters, tol=0.0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            w, cpu, wall = timed(lambda model=model: model.fit_transform(x))
        err = float(np.linalg.norm(a - w.astype(np.float64) @ model.components_) / np.linalg.norm(a))
        out.append((solver, iters, cpu, wall, err))
    return out


def bench_nmf(rows: list[str], n: int, d: int, k: int, runs: list[tuple[str, int]], cap: int) -> list[float]:
    """One row per scikit-learn run: featflow's time to that run's error, with HER extrapolation (the plain-NMF
    default) and without (the accelerated blocked HALS alone, which the stage's ridge fit runs)."""
    a = activations(n, d)
    ref = sklearn_runs(a, k, runs)
    targets = [r[4] for r in ref]
    traces = {ext: ours_trace(a, k, cap, targets, ext) for ext in (True, False)}
    ratios = []
    for solver, iters, cpu, wall, err in ref:
        cells, speed = [], []
        for ext in (True, False):
            trace = traces[ext]
            hit = next((t for t in trace if t[3] <= err), None)
            if hit is None:
                cells.append(f"not reached in {trace[-1][0]} it. ({trace[-1][1]:.2f} s)")
                speed.append("-")
                continue
            ratios += [cpu / hit[1]] if ext else []
            cells.append(f"{hit[1]:.2f} s ({hit[2]:.2f} wall), {hit[0]} it.")
            speed.append(f"{cpu / hit[1]:.1f}x")
        rows.append(
            f"| NMF n {n}, d {d}, k {k}: to sklearn {solver}'s error after {iters} it. ({err:.4f}) | {cells[0]} | "
            f"{cpu:.2f} s ({wall:.2f}) | **{speed[0]}** | without extrapolation (the ridge stage's path): "
            f"{cells[1]}, {speed[1]}; CPU s per iteration: featflow "
            f"{traces[True][-1][1] / traces[True][-1][0]:.3f} / {traces[False][-1][1] / traces[False][-1][0]:.3f}, "
            f"sklearn {cpu / iters:.3f} |"
        )
    return ratios


def bench_codes(rows: list[str]) -> None:
    k, ridge = 128, 1e-2
    atoms = fit_nmf(torch.from_numpy(activations(2000, 64)).float(), k, 100, ridge=ridge).atoms.double().numpy()
    a = activations(2000, 64, seed=5)
    mu = ridge * float((atoms**2).sum(1).mean())
    aug = np.vstack([atoms.T, np.sqrt(mu) * np.eye(k)])
    ref, c_ref, w_ref = timed(lambda: np.stack([nnls(aug, np.concatenate([row, np.zeros(k)]))[0] for row in a]))

    def objective(z: np.ndarray) -> np.ndarray:
        return ((a - z @ atoms) ** 2).sum(1) + mu * (z**2).sum(1)

    best = objective(ref)
    for dtype in (torch.float32, torch.float64):
        (z, report), cpu, wall = timed(
            lambda dtype=dtype: nnls_codes_report(
                torch.from_numpy(a).to(dtype), torch.from_numpy(atoms).to(dtype), 1000, 1e-4, ridge=ridge
            )
        )
        gap = (objective(z.double().numpy()) - best) / best
        rows.append(
            f"| codes, n 2000, k {k}, d 64, code ridge {ridge:g} (a ridge fit's atoms) | {str(dtype)[6:]}, "
            f"stopped at certified gap 1e-4 ({report.form} form, slowest sample {report.iterations} it., all "
            f"converged: {report.converged}) {cpu:.3f} s ({wall:.3f}) | per-sample scipy nnls, augmented system "
            f"{c_ref:.2f} s ({w_ref:.2f}) | **{c_ref / cpu:.1f}x** | true relative objective gap to scipy: median "
            f"{np.median(gap):.1e}, max {gap.max():.1e} (certified max {report.max_gap:.1e}) |"
        )


def bench_gradient_form(rows: list[str]) -> None:
    rng = np.random.default_rng(7)
    for n, d, k in ((2000, 64, 128), (1000, 512, 1024), (1000, 512, 2048)):
        atoms = torch.from_numpy(np.abs(rng.normal(size=(k, d)))).float()
        atoms /= atoms.norm(dim=1, keepdim=True)
        a = torch.from_numpy(np.abs(rng.normal(size=(n, d)))).float()
        per_it = {}
        for form in ("gram", "dictionary"):
            _, cpu, _ = timed(
                lambda form=form, a=a, atoms=atoms: nnls_codes_report(a, atoms, 20, 0.0, ridge=1e-2, form=form)
            )
            per_it[form] = cpu / 20
        rows.append(
            f"| codes gradient form, n {n}, d {d}, k {k} (k/d = {k // d}) | auto picks {gradient_form(k, d)} | "
            f"gram {per_it['gram'] * 1e3:.1f} ms/it., dictionary {per_it['dictionary'] * 1e3:.1f} ms/it. | "
            f"{max(per_it.values()) / min(per_it.values()):.2f}x | cheaper: {min(per_it, key=per_it.get)} |"
        )


ATOM_MAP = """
import numpy as np, time
t = time.perf_counter()
from featflow.plots.complexity import atom_map
rng = np.random.default_rng(0)
atoms = rng.random((128, 64)) * (rng.random((128, 64)) < 0.3)
atom_map(atoms, rng.random(128), 15, 0, method="{method}")
print(time.perf_counter() - t)
"""


def bench_atom_map(rows: list[str]) -> None:
    times = {}
    for method in ("umap", "auto"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", ATOM_MAP.format(method=method)], capture_output=True, text=True
        )
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode:
            raise RuntimeError(out.stderr)
        times[method] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall)
    rows.append(
        f"| atom map, 128 atoms, fresh interpreter (import + numba compile + fit + plot) | spectral embedding "
        f"{times['auto'][0]:.1f} s ({times['auto'][1]:.1f} wall) | UMAP {times['umap'][0]:.1f} s "
        f"({times['umap'][1]:.1f} wall) | **{times['umap'][0] / times['auto'][0]:.1f}x** | saved per "
        f"complexity_figures job: {times['umap'][1] - times['auto'][1]:.1f} s wall |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the N 5000, d 512, k 2048 NMF (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    load = os.getloadavg()
    rows = ["| benchmark | featflow | reference | speed-up (CPU s) | agreement / notes |", "|---|---|---|---|---|"]
    with threadpool_limits(1):
        bench_vinfo(rows)
        small = bench_nmf(
            rows,
            2000,
            64,
            128,
            [("cd", 50), ("cd", 100), ("cd", 200), ("mu", 250), ("mu", 500), ("mu", 1000), ("mu", 2000)],
            1500,
        )
        large = [] if args.quick else bench_nmf(rows, 5000, 512, 2048, [("cd", 3), ("mu", 40)], 30)
        bench_codes(rows)
        bench_gradient_form(rows)
        bench_atom_map(rows)
    print(
        f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}` on {platform.node()} "
        f"({os.cpu_count()} CPUs), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average "
        f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; torch {torch.__version__} (1 thread), numpy "
        f"{np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__} (1 thread); whole run "
        f"{time.perf_counter() - start:.0f} s wall.\n"
    )
    print("\n".join(rows))
    print(
        f"\nNMF time-to-error, worst ratio over the targets: default size {min(small):.1f}x"
        + (f", n 5000 / d 512 / k 2048 {min(large):.1f}x" if large else "")
    )


if __name__ == "__main__":
    main()
