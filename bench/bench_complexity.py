"""Complexity-branch benchmarks not covered by their own file, at equal threads (one each side).

Run: ``.venv/bin/python bench/bench_complexity.py`` (CPU). Prints the rows for bench/RESULTS.md. Threads:
torch.set_num_threads(1), and OMP / MKL / OpenBLAS set to 1 before numpy loads, plus threadpoolctl. Times are CPU
seconds of this process (``time.process_time``) with wall seconds beside. V-information, NMF and the codes have
their own benchmarks on the path ``make run`` executes: bench/bench_vinfo.py, bench/bench_nmf.py,
bench/bench_codes.py.

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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow.metrics.nnls import gradient_form, nnls_codes_report  # noqa: E402


def timed(fn):
    """(result, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


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
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    load = os.getloadavg()
    rows = ["| benchmark | featflow | reference | speed-up (CPU s) | agreement / notes |", "|---|---|---|---|---|"]
    with threadpool_limits(1):
        bench_gradient_form(rows)
        bench_atom_map(rows)
    print(
        f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}` on {platform.node()} "
        f"({os.cpu_count()} CPUs), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average "
        f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; torch {torch.__version__} (1 thread), numpy "
        f"{np.__version__}; whole run {time.perf_counter() - start:.0f} s wall.\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
