"""V-information against ONE multi-output scikit-learn Ridge (issue 28, item 1), at equal threads and equal R^2.

Per size (n, d, k): non-negative float32 activations (a ReLU of a 64-dim latent plus noise, as stored by the
activations stage) and non-negative float32 codes partly predictable from them. Timed, 3 repeats each, CPU
seconds of this process (``time.process_time``) with min / median:

- library call: ``vinfo.ridge_r2`` on the in-memory float64 arrays (one chunk);
- library call in 170-row chunks (``ridge_r2_chunks`` over ``array_chunks(rows=170)``): the cost must not depend
  on the chunk size;
- stage path: ``featflow.complexity.vinfo.compute_vinfo`` on an activations file and a codes file written with
  ``store.append_rows`` as the stages write them, read through ``store.iter_rows`` at its default chunk size (the
  rows per chunk are printed), output file included;
- reference: ``Ridge(alpha=lambda, solver="cholesky")`` fitted on the float64 training rows (prepared outside
  the timer) and ``r2_score`` of its predictions on the held-out rows, the same split and lambda.

Equal results: the largest |R^2 difference| to the reference over the targets (clipped to [0, 1] for the stage,
whose I_V is clipped), required below 1e-8. Threads: OMP / MKL / OpenBLAS set to 1 before numpy loads,
``torch.set_num_threads(1)`` and threadpoolctl. Run:
    nice -n 5 .venv/bin/python bench/bench_vinfo.py [--sizes default,10k,20k] [--repeats 3]
and copy the printed section into bench/RESULTS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from benchutil import cpu_runs  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from featflow import store  # noqa: E402
from featflow.complexity.codes import KIND as CODES_KIND  # noqa: E402
from featflow.complexity.spec import ComplexitySpec  # noqa: E402
from featflow.complexity.vinfo import compute_vinfo  # noqa: E402
from featflow.metrics import vinfo  # noqa: E402

SIZES = {"default": (2000, 64, 128), "10k": (10_000, 512, 2048), "20k": (20_000, 2048, 4096)}
SEED, TEST_FRACTION, RIDGE_SCALE = 0, 0.2, 1e-3


def data(n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 activations (n, d) and codes (n, k), written chunk by chunk to bound the peak memory."""
    rng = np.random.default_rng(SEED)
    mix_x, mix_z = rng.normal(size=(64, d)), rng.normal(size=(64, k))
    x, z = np.empty((n, d), np.float32), np.empty((n, k), np.float32)
    for start in range(0, n, 4096):
        latent = rng.normal(size=(min(4096, n - start), 64))
        x[start : start + len(latent)] = np.maximum(latent @ mix_x, 0) + 0.1 * rng.random((len(latent), d))
        z[start : start + len(latent)] = np.maximum(latent @ mix_z + rng.normal(size=(len(latent), k)), 0)
    return x, z


def write_inputs(root: Path, x: np.ndarray, z: np.ndarray) -> dict[str, Path]:
    """The files compute_vinfo reads: activations (one layer ``act``, indices), codes, a dictionary (atoms)."""
    paths = {name: root / f"{name}.h5" for name in ("activations", "codes", "dictionary")}
    with (
        store.h5_writer(paths["activations"], "activations", {"layers": ["act"]}) as acts,
        store.h5_writer(paths["codes"], CODES_KIND, {}) as codes,
    ):
        for start in range(0, x.shape[0], 256):  # the extraction's batches
            store.append_rows(acts, "layers/act", x[start : start + 256])
            store.append_rows(acts, "indices", np.arange(start, min(start + 256, x.shape[0])))
            store.append_rows(codes, "codes", z[start : start + 256])
    atoms = np.abs(np.random.default_rng(SEED).normal(size=(z.shape[1], x.shape[1]))).astype(np.float32)
    store.write_h5(paths["dictionary"], "complexity-dictionary", {"atoms": atoms}, {"layer": "act", "method": "nmf"})
    return paths


def in_memory(x32: np.ndarray, z32: np.ndarray, repeats: int) -> dict[str, tuple[np.ndarray, list[float]]]:
    """(R^2, CPU seconds) of the reference, the library call and the library call in 170-row chunks."""
    n, d = x32.shape
    x, z = x32.astype(np.float64), z32.astype(np.float64)
    train, test = vinfo.split_indices(n, TEST_FRACTION, SEED)
    x_train, z_train, x_test, z_test = x[train], z[train], x[test], z[test]
    centered = x_train - x_train.mean(0)
    lam = RIDGE_SCALE * float(np.einsum("ij,ij->", centered, centered)) / d
    del centered

    def reference() -> np.ndarray:
        pred = Ridge(alpha=lam, solver="cholesky").fit(x_train, z_train).predict(x_test)
        return r2_score(z_test, pred, multioutput="raw_values")

    masks = [np.isin(np.arange(n), part) for part in (train, test)]
    return {
        "reference": cpu_runs(reference, repeats),
        "library": cpu_runs(lambda: vinfo.ridge_r2(x, z, train, test, RIDGE_SCALE), repeats),
        "170-row chunks": cpu_runs(
            lambda: vinfo.ridge_r2_chunks(vinfo.array_chunks([x], z, 170), *masks, RIDGE_SCALE)[0], 1
        ),
    }


def bench_size(label: str, n: int, d: int, k: int, repeats: int, root: Path) -> list[str]:
    x32, z32 = data(n, d, k)
    results = in_memory(x32, z32, repeats)
    (ref, t_ref), (ours, t_lib), (small, t_small) = results.values()
    paths = write_inputs(root, x32, z32)
    del x32, z32
    spec = ComplexitySpec.from_dict({"dictionary": {"k": k}, "vinfo": {"include_input": False}})
    out = root / "vinfo.h5"

    def stage() -> np.ndarray:
        compute_vinfo(
            spec, codes=paths["codes"], activations=paths["activations"], data=root, dictionary=paths["dictionary"],
            out=out, factors_csv=root / "f.csv", seed=SEED, attrs={},
        )  # fmt: skip
        return store.read_h5(out, "complexity-vinfo")["iv"][0]

    staged, t_stage = cpu_runs(stage, repeats)
    row_bytes = 4 * (d + k)
    chunk_rows = max(1, store.CHUNK_BYTES // row_bytes)
    for path in root.glob("*.h5"):
        path.unlink()

    ok = np.isfinite(ref) & np.isfinite(ours)
    diffs = {
        "library": np.abs(ours - ref)[ok].max(),
        "170-row chunks": np.abs(small - ref)[ok].max(),
        "stage": np.abs(staged - np.clip(ref, 0, 1))[ok].max(),
    }
    ref_med = statistics.median(t_ref)

    def cell(times: list[float]) -> str:
        return f"{min(times):.3f} / {statistics.median(times):.3f}"

    def ratio(times: list[float]) -> str:
        return f"**{min(t_ref) / min(times):.2f}x** / {ref_med / statistics.median(times):.2f}x"

    head = f"n {n:,}, d {d:,}, k {k:,} ({label})"
    return [
        f"| {head} | library call | {cell(t_lib)} | {cell(t_ref)} | {ratio(t_lib)} | {diffs['library']:.1e} |",
        f"| same | library call, 170-row chunks (1 run) | {t_small[0]:.3f} | {cell(t_ref)} | "
        f"{min(t_ref) / t_small[0]:.2f}x | {diffs['170-row chunks']:.1e} |",
        f"| same | stage path (compute_vinfo, {chunk_rows}-row chunks from HDF5) | {cell(t_stage)} | {cell(t_ref)} | "
        f"{ratio(t_stage)} | {diffs['stage']:.1e} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="default,10k,20k", help=f"comma-separated among {list(SIZES)}")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, load = time.perf_counter(), os.getloadavg()
    rows = [
        "| size | featflow | featflow CPU s min / median | ONE sklearn Ridge (cholesky) min / median | "
        "speed-up at min / median | max abs R^2 difference |",
        "|---|---|---|---|---|---|",
    ]
    with threadpool_limits(1), tempfile.TemporaryDirectory(prefix="bench-vinfo-") as tmp:
        for label in args.sizes.split(","):
            rows += bench_size(label, *SIZES[label], args.repeats, Path(tmp))
    print(
        f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}` on {platform.node()} "
        f"({os.cpu_count()} CPUs, {platform.processor() or platform.machine()}), "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; 1 thread each side: torch {torch.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}; {args.repeats} runs each; whole run "
        f"{time.perf_counter() - start:.0f} s wall.\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
