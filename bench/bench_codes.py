"""Codes benchmark (issue 28, item 3): the complexity stage's encoder against scipy's per-sample ``nnls``.

Run: ``.venv/bin/python bench/bench_codes.py`` (the default size and the stage's path); ``--research`` adds
d 512, k 1,024 and k 2,048. Prints the markdown rows for bench/RESULTS.md.

- Equal threads: OMP / MKL / OpenBLAS at 1 before numpy loads, ``torch.set_num_threads(1)`` and threadpoolctl,
  so torch, numpy and scipy each run on one thread. Times are CPU seconds of this process
  (``time.process_time``: the shared machine's load cancels), 3 repeats each side, min and median.
- The problem is the stage's: the encoder is ``featflow.dictionary.nmf.coder`` with the default
  config's ``complexity.dictionary`` (float32, code_ridge 1e-2, code_tol 1e-4, code_iterations 1000) on the
  atoms of a ridge NMF fit; the reference is scipy's exact active-set ``nnls`` per sample on the augmented
  system [D^T; sqrt(mu) I] z = [a; 0] (float64).
- Equal accuracy: each sample's true relative objective gap to scipy's optimum, (F(z) - F*) / F*, max and
  median, beside the solver's certified per-sample bound (its duality gap / F(z)).
- The stage's path: ``featflow.complexity.codes.encode_split`` on an activations file (tests/complexity_data.py,
  the default d = 64, k = 128) with the atoms of ``featflow.complexity.dictionary.fit_dictionary`` on it, i.e.
  reading, encoding, reconstruction accuracy and the HDF5 append, against scipy on the same rows.
- Research widths: scipy's per-sample time from 3 repeats on the first ``--ref-rows`` rows (one full pass gives
  the optimum of every row); ours on all rows; the ratio is per sample.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from scipy.optimize import nnls  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.complexity_data: the stage's input files

from benchutil import activations, cpu_runs  # noqa: E402

from featflow import store  # noqa: E402
from featflow.complexity.codes import encode_split  # noqa: E402
from featflow.complexity.dictionary import fit_dictionary  # noqa: E402
from featflow.complexity.spec import ComplexitySpec  # noqa: E402
from featflow.dictionary.nmf import coder, fit_nmf  # noqa: E402
from tests.complexity_data import write_complexity_inputs  # noqa: E402


def default_spec() -> ComplexitySpec:
    """The complexity settings of the embedded default config (only its dictionary section matters here)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return ComplexitySpec.from_dict({"dictionary": config["complexity"]["dictionary"]})


def scipy_codes(a: np.ndarray, atoms: np.ndarray, mu: float) -> np.ndarray:
    """Exact ridge NNLS per sample: scipy's nnls on [D^T; sqrt(mu) I] z = [a; 0]."""
    k = atoms.shape[0]
    aug = np.vstack([atoms.T, np.sqrt(mu) * np.eye(k)])
    zeros = np.zeros(k)
    return np.stack([nnls(aug, np.concatenate([row, zeros]))[0] for row in a])


def objective(a: np.ndarray, atoms: np.ndarray, mu: float, z: np.ndarray) -> np.ndarray:
    return ((a - z @ atoms) ** 2).sum(1) + mu * (z**2).sum(1)


def stats(times: list[float]) -> str:
    return f"{min(times):.3f} / {float(np.median(times)):.3f} s"


def compare(
    label: str, a: np.ndarray, atoms: np.ndarray, spec: ComplexitySpec, ref_rows: int | None, ours_fn=None
) -> str:
    """One table row: the stage's encoder (or ``ours_fn``) against scipy on the same rows, at equal accuracy."""
    mu = spec.dictionary.code_ridge * float((atoms**2).sum(1).mean())
    enc = coder(torch.from_numpy(atoms).float(), spec.dictionary)
    (z, report), ours = cpu_runs(lambda: enc.encode_report(torch.from_numpy(a).float()))
    if ours_fn is not None:
        _, ours = cpu_runs(ours_fn)
    n = len(a)
    if ref_rows is None:
        ref, theirs = cpu_runs(lambda: scipy_codes(a, atoms, mu))
        per_theirs = [t / n for t in theirs]
    else:
        ref = scipy_codes(a, atoms, mu)
        _, theirs = cpu_runs(lambda: scipy_codes(a[:ref_rows], atoms, mu))
        per_theirs = [t / ref_rows for t in theirs]
    best = objective(a, atoms, mu, ref)
    gap = (objective(a, atoms, mu, z.double().numpy()) - best) / best
    per_ours = [t / n for t in ours]
    ratio_min = min(per_theirs) / min(per_ours)
    ratio_med = float(np.median(per_theirs) / np.median(per_ours))
    return (
        f"| {label} | {stats(ours)} ({min(per_ours) * 1e6:.0f} us/sample; {report.form} form, slowest sample "
        f"{report.iterations} it.) | {min(per_theirs) * 1e6:.0f} / {float(np.median(per_theirs)) * 1e6:.0f} "
        f"us/sample{'' if ref_rows is None else f' ({ref_rows} rows)'} | **{ratio_min:.1f}x** / {ratio_med:.1f}x | "
        f"true max {gap.max():.1e}, median {float(np.median(gap)):.1e}; certified max {report.max_gap:.1e} "
        f"({report.max_gap / max(gap.max(), 1e-30):.1f}x the true max), all converged: {report.converged} |"
    )


def ridge_atoms(d: int, k: int, n: int, iterations: int) -> np.ndarray:
    """Unit-norm atoms of a ridge NMF fit (the stage fits with the code ridge)."""
    a = torch.from_numpy(activations(n, d)).float()
    return fit_nmf(a, k, iterations, ridge=1e-2).atoms.double().numpy()


def stage_row(spec: ComplexitySpec, n: int) -> str:
    """The stage's function on a file: encode_split (read, encode, accuracy with z D, HDF5 append), with the
    atoms of the dictionary stage's own fit on the file's layer (the inputs' atoms are random, not an NMF fit)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_complexity_inputs(Path(tmp), n, d=64, k=spec.dictionary.k)
        cpu, dic = torch.device("cpu"), Path(tmp) / "fitted.h5"
        fit_dictionary(
            spec,
            layer="act",
            activations=paths["activations"],
            checkpoint=paths["checkpoint"],
            out=dic,
            device=cpu,
            seed=0,
            attrs={},
        )

        def encode() -> None:
            out = Path(tmp) / "codes.h5"
            out.unlink(missing_ok=True)
            encode_split(
                spec,
                dictionary=dic,
                activations=paths["activations"],
                checkpoint=paths["checkpoint"],
                out=out,
                device=cpu,
                attrs={},
            )

        encode()  # warm-up: the checkpoint's first load
        atoms = store.read_items(dic, "complexity-dictionary", ["atoms"])["atoms"].astype(np.float64)
        a = store.read_items(paths["activations"], "activations", ["layers/act"])["layers/act"].astype(np.float64)
        label = f"stage path (encode_split on a file, atoms of fit_dictionary), n {n}, d 64, k {len(atoms)}"
        return compare(label, a, atoms, spec, None, encode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--research", action="store_true", help="add d 512, k 1,024 and k 2,048")
    parser.add_argument("--research-n", type=int, default=256)
    parser.add_argument("--ref-rows", type=int, default=32, help="rows of scipy's repeats at research widths")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = default_spec()
    ds = spec.dictionary
    rows = []
    with threadpool_limits(1):
        atoms = ridge_atoms(64, ds.k, 2000, 100)
        a = activations(args.n, 64, seed=5)
        rows.append(compare(f"encoder, n {args.n}, d 64, k {ds.k} (default size)", a, atoms, spec, None))
        rows.append(stage_row(spec, args.n))
        if args.research:
            for k in (1024, 2048):
                atoms = ridge_atoms(512, k, 2000, 20)
                a = activations(args.research_n, 512, seed=5)
                label = f"encoder, n {args.research_n}, d 512, k {k}"
                rows.append(compare(label, a, atoms, spec, args.ref_rows))
    print(
        f"`.venv/bin/python bench/bench_codes.py{' --research' if args.research else ''}`, "
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"torch {torch.__version__}, scipy {scipy.__version__}, numpy {np.__version__}; 1 thread each side; "
        f"settings: float32, code_ridge {ds.code_ridge:g}, code_tol {ds.code_tol:g}, code_iterations "
        f"{ds.code_iterations}.\n"
    )
    print(
        "| codes | featflow CPU s min / median (3 runs) | scipy nnls, augmented system, min / median | ratio "
        "min / median | equal accuracy: true relative objective gap to scipy per sample |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
