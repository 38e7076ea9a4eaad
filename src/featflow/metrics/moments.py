"""Running means and centered co-moments of paired row chunks, for the statistics that stream over samples.

Each chunk adds its products around a fixed shift (the first chunk's means) into preallocated float64 buffers
in place: BLAS SYRK for ``X^T X`` (the upper triangle, half the flops), GEMM for ``X^T Z``. A chunk of m rows
then costs its m (d^2 / 2 + d k) multiply-adds and O(m (d + k)) more, whatever m: no (d, d) or (d, k)
temporary per chunk, so the total is that of one product over all rows (bench/bench_vinfo.py). The centered
moments are formed once, when read: ``S - s s^T / n`` with ``S``, ``s`` the sums of the shifted rows. Shifting by
a value within a few standard deviations of the mean (Chan, Golub & LeVeque 1983, "shifted data") keeps ``s``
small, so the subtraction does not cancel the way ``sum x^2 - n mean^2`` does; the tests compare with
scikit-learn to 1e-10 on off-centre data for chunks of 1, 7 and 64 rows. Float32 chunks are cast to float64
by the shift itself (float32 products lose R^2 digits at 1e-4, see bench/bench_vinfo.py).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas


class CoMoments:
    """Count ``n``, means ``mean_x`` (d,), ``mean_z`` (k,) and centered ``xx`` = X^T X (d, d), ``xz`` = X^T Z
    (d, k) and ``zz`` = diag(Z^T Z) (k,) of (x, z) rows, in float64, accumulated chunk by chunk with
    :meth:`update`. Reading ``xx``, ``xz`` or ``zz`` centers the buffers in place (once per batch of updates)
    and returns them: read-only to callers."""

    def __init__(self, d: int, k: int) -> None:
        self.n = 0
        self._shift_x, self._shift_z = np.zeros(d), np.zeros(k)
        self._sum_x, self._sum_z = np.zeros(d), np.zeros(k)  # sums of the shifted rows
        self._xx = np.zeros((d, d), order="F")  # SYRK keeps the upper triangle; centering mirrors it
        self._xz, self._zz = np.zeros((d, k), order="F"), np.zeros(k)
        self._centered = True

    @classmethod
    def of(cls, x: np.ndarray, z: np.ndarray) -> CoMoments:
        """The moments of the rows of ``x`` (m, d) and ``z`` (m, k)."""
        out = cls(x.shape[1], z.shape[1])
        out.update(x, z)
        return out

    def update(self, x: np.ndarray, z: np.ndarray) -> None:
        """Add the rows of ``x`` (m, d) and ``z`` (m, k), float32 or float64."""
        if not x.shape[0]:
            return
        if not self.n:
            self._shift_x[:], self._shift_z[:] = x.mean(0, dtype=np.float64), z.mean(0, dtype=np.float64)
        xs = np.subtract(x, self._shift_x, dtype=np.float64, order="C")
        zs = np.subtract(z, self._shift_z, dtype=np.float64, order="C")
        # Transposed C-ordered rows are Fortran-ordered: BLAS reads them in place and writes into the buffers.
        blas.dsyrk(1.0, xs.T, beta=1.0, c=self._xx, overwrite_c=1)
        blas.dgemm(1.0, xs.T, zs.T, beta=1.0, c=self._xz, trans_b=1, overwrite_c=1)
        self._zz += np.einsum("ij,ij->j", zs, zs)
        self._sum_x += xs.sum(0)
        self._sum_z += zs.sum(0)
        self.n += x.shape[0]
        self._centered = False

    def merge(self, other: CoMoments) -> None:
        """Add the rows ``other`` summarizes: its centered moments plus its count times its mean's offset from
        this shift (the pairwise update of Chan, Golub & LeVeque)."""
        if not other.n:
            return
        dx, dz = other.mean_x - self._shift_x, other.mean_z - self._shift_z
        if not self.n:
            self._shift_x[:], self._shift_z[:] = other.mean_x, other.mean_z
            dx, dz = np.zeros_like(dx), np.zeros_like(dz)
        self._xx += other.xx
        self._xz += other.xz
        self._zz += other.zz
        blas.dsyr(float(other.n), dx, a=self._xx, overwrite_a=1)
        blas.dger(float(other.n), dx, dz, a=self._xz, overwrite_a=1)
        self._zz += other.n * dz * dz
        self._sum_x += other.n * dx
        self._sum_z += other.n * dz
        self.n += other.n
        self._centered = False

    @property
    def mean_x(self) -> np.ndarray:
        return self._shift_x + self._sum_x / max(self.n, 1)

    @property
    def mean_z(self) -> np.ndarray:
        return self._shift_z + self._sum_z / max(self.n, 1)

    @property
    def xx(self) -> np.ndarray:
        self._center()
        return self._xx

    @property
    def xz(self) -> np.ndarray:
        self._center()
        return self._xz

    @property
    def zz(self) -> np.ndarray:
        self._center()
        return self._zz

    def _center(self) -> None:
        """Move the shift to the mean in place: the buffers then hold the centered moments and the sums are 0."""
        if self._centered or not self.n:
            return
        scale = -1.0 / self.n
        blas.dsyr(scale, self._sum_x, a=self._xx, overwrite_a=1)
        blas.dger(scale, self._sum_x, self._sum_z, a=self._xz, overwrite_a=1)
        np.copyto(self._xx, self._xx.T, where=np.tri(self._xx.shape[0], k=-1, dtype=bool))  # mirror the upper
        self._zz -= self._sum_z**2 / self.n
        self._shift_x += self._sum_x / self.n
        self._shift_z += self._sum_z / self.n
        self._sum_x[:], self._sum_z[:] = 0.0, 0.0
        self._centered = True
