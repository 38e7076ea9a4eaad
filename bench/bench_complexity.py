"""Complexity-branch benchmarks: batched V-information, NMF and codes against the per-feature / reference way.

Run: ``.venv/bin/python bench/bench_complexity.py`` (CPU, one thread). Prints a markdown section for
bench/RESULTS.md. Data: non-negative activations with a planted sparse structure (n x d = 2000 x 64).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import nnls
from sklearn.decomposition import NMF
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featflow.dictionary import fit_nmf, nnls_codes, relative_error
from featflow.metrics.vinfo import ridge_r2, split_indices


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def activations(n: int, d: int, seed: int = 0) -> np.ndarray:
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
    ours, t_ours = timed(lambda: ridge_r2(x, z, train, test))
    xc = x[train] - x[train].mean(0)
    lam = 1e-3 * np.trace(xc.T @ xc) / d

    def per_feature() -> np.ndarray:
        return np.array(
            [r2_score(z[test, i], Ridge(alpha=lam).fit(x[train], z[train, i]).predict(x[test])) for i in range(k)]
        )

    ref, t_ref = timed(per_feature)
    rows.append(
        f"| V-information, k = {k}, n = {n}, d = {d} | one factorization {t_ours:.3f} s | "
        f"{k} sklearn Ridge fits {t_ref:.2f} s | **{t_ref / t_ours:.0f}x** | "
        f"max abs R^2 difference {np.abs(ours - ref).max():.1e} |"
    )


def bench_nmf(rows: list[str]) -> np.ndarray:
    a = activations(2000, 64)
    k, iters = 128, 100
    res, t_ours = timed(lambda: fit_nmf(torch.from_numpy(a), k, iters, "hals", tol=0.0))
    ref_model = NMF(n_components=k, init="random", solver="cd", max_iter=iters, tol=0.0, random_state=0)
    w, t_ref = timed(lambda: ref_model.fit_transform(a))
    err_ref = np.linalg.norm(a - w @ ref_model.components_) / np.linalg.norm(a)
    err_ours = relative_error(torch.from_numpy(a), res.codes, res.atoms)
    rows.append(
        f"| NMF HALS, n = 2000, d = 64, k = {k}, {iters} iterations | {t_ours:.2f} s, rel. error "
        f"{err_ours:.4f} | sklearn NMF (cd) {t_ref:.2f} s, rel. error {err_ref:.4f} | "
        f"{t_ref / t_ours:.1f}x | error ratio {err_ours / err_ref:.3f} |"
    )
    return res.atoms.numpy()


def bench_codes(rows: list[str], atoms: np.ndarray) -> None:
    a = activations(2000, 64, seed=5)
    ref, t_ref = timed(lambda: np.stack([nnls(atoms.T, row)[0] for row in a]))
    norm = (a**2).sum(1)
    for dtype, iters in ((torch.float64, 150), (torch.float32, 150), (torch.float32, 50)):
        ours, t_ours = timed(
            lambda dtype=dtype, iters=iters: (
                nnls_codes(torch.from_numpy(a).to(dtype), torch.from_numpy(atoms).to(dtype), iters).double().numpy()
            )
        )
        gap = (((a - ours @ atoms) ** 2).sum(1) - ((a - ref @ atoms) ** 2).sum(1)) / norm
        rows.append(
            f"| codes, n = 2000, k = {atoms.shape[0]}, d = 64 (the NMF atoms above) | batched NNLS "
            f"{str(dtype)[6:]}, {iters} it. {t_ours:.3f} s | per-sample scipy nnls {t_ref:.2f} s | "
            f"**{t_ref / t_ours:.1f}x** | median / max excess relative residual {np.median(gap):.1e} / "
            f"{gap.max():.1e} |"
        )


def main() -> None:
    torch.set_num_threads(1)
    rows = ["| benchmark | featflow | reference | speed-up | agreement |", "|---|---|---|---|---|"]
    bench_vinfo(rows)
    atoms = bench_nmf(rows)
    bench_codes(rows, atoms)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
