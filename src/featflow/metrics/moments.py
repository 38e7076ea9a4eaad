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
        m = x.shape[0]
        if m == 0:
            return
        x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
        chunk_x, chunk_z = x.mean(0), z.mean(0)
        xc, zc = x - chunk_x, z - chunk_z
        total = self.n + m
        dx, dz = chunk_x - self.mean_x, chunk_z - self.mean_z
        weight = self.n * m / total
        self.xx += xc.T @ xc + weight * np.outer(dx, dx)
        self.xz += xc.T @ zc + weight * np.outer(dx, dz)
        self.zz += np.einsum("ij,ij->j", zc, zc) + weight * dz * dz
        self.mean_x += dx * (m / total)
        self.mean_z += dz * (m / total)
        self.n = total
