"""Running means and centered co-moments of paired row chunks, for the statistics that stream over samples.

The pairwise update of Chan, Golub & LeVeque (1979) merges each chunk's own centered products with the running
ones, so the result equals the centered products of all rows at once up to rounding (no ``sum x^2 - n mean^2``
cancellation), whatever the chunking.
"""

from __future__ import annotations

import numpy as np


class CoMoments:
    """Count, means and centered ``X^T X`` (d, d), ``X^T Z`` (d, k) and ``diag(Z^T Z)`` (k,) of (x, z) rows,
    in float64, accumulated chunk by chunk with :meth:`update`."""

    def __init__(self, d: int, k: int) -> None:
        self.n = 0
        self.mean_x, self.mean_z = np.zeros(d), np.zeros(k)
        self.xx, self.xz, self.zz = np.zeros((d, d)), np.zeros((d, k)), np.zeros(k)

    def update(self, x: np.ndarray, z: np.ndarray) -> None:
        """Add the rows of ``x`` (m, d) and ``z`` (m, k)."""
        if x.shape[0]:
            self.merge(CoMoments.of(x, z))

    @classmethod
    def of(cls, x: np.ndarray, z: np.ndarray) -> CoMoments:
        """The moments of the rows of ``x`` (m, d) and ``z`` (m, k)."""
        x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
        out = cls(x.shape[1], z.shape[1])
        out.n, out.mean_x, out.mean_z = x.shape[0], x.mean(0), z.mean(0)
        xc, zc = x - out.mean_x, z - out.mean_z
        out.xx, out.xz, out.zz = xc.T @ xc, xc.T @ zc, np.einsum("ij,ij->j", zc, zc)
        return out

    def merge(self, other: CoMoments) -> None:
        """Add the rows ``other`` summarizes (the pairwise update)."""
        if other.n == 0:
            return
        total = self.n + other.n
        dx, dz = other.mean_x - self.mean_x, other.mean_z - self.mean_z
        weight = self.n * other.n / total
        self.xx = self.xx + other.xx + weight * np.outer(dx, dx)
        self.xz = self.xz + other.xz + weight * np.outer(dx, dz)
        self.zz = self.zz + other.zz + weight * dz * dz
        self.mean_x = self.mean_x + dx * (other.n / total)
        self.mean_z = self.mean_z + dz * (other.n / total)
        self.n = total
