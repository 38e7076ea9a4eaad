"""CoMoments: centered moments equal to the two-pass ones whatever the chunking, the order of reads and updates,
merges and the input's float width; a chunk's update allocates nothing of the moments' size (the cost of
streaming does not depend on the chunk size)."""

import tracemalloc

import numpy as np
import pytest

from featflow.metrics.moments import CoMoments


def _data(n: int = 301, d: int = 5, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 1e3  # off-centre: sum x^2 - n mean^2 would cancel
    z = np.abs(x[:, :2] @ rng.normal(size=(2, k))) + 50.0
    return x, z


def _assert_equal_to_two_pass(moments: CoMoments, x: np.ndarray, z: np.ndarray) -> None:
    xc, zc = x - x.mean(0), z - z.mean(0)
    assert moments.n == x.shape[0]
    np.testing.assert_allclose(moments.mean_x, x.mean(0), rtol=1e-13, atol=1e-13 * np.abs(x).max())
    np.testing.assert_allclose(moments.mean_z, z.mean(0), rtol=1e-13, atol=1e-13 * np.abs(z).max())
    np.testing.assert_allclose(moments.xx, xc.T @ xc, rtol=1e-10, atol=1e-10 * np.abs(xc.T @ xc).max())
    np.testing.assert_allclose(moments.xz, xc.T @ zc, rtol=1e-10, atol=1e-10 * np.abs(xc.T @ zc).max())
    np.testing.assert_allclose(moments.zz, (zc * zc).sum(0), rtol=1e-10)
    np.testing.assert_array_equal(moments.xx, moments.xx.T)


@pytest.mark.parametrize("rows", [1, 7, 64, 1000])
def test_chunked_moments_equal_two_pass(rows: int) -> None:
    x, z = _data()
    moments = CoMoments(x.shape[1], z.shape[1])
    for start in range(0, x.shape[0], rows):
        moments.update(x[start : start + rows], z[start : start + rows])
        if start == 140 // rows * rows:  # read mid-way: centering in place must not disturb later updates
            _assert_equal_to_two_pass(moments, x[: start + rows], z[: start + rows])
    _assert_equal_to_two_pass(moments, x, z)


def test_merge_and_empty_chunks() -> None:
    x, z = _data()
    parts = [CoMoments.of(x[a:b], z[a:b]) for a, b in ((0, 100), (100, 101), (101, 301))]
    merged = CoMoments(x.shape[1], z.shape[1])
    merged.update(x[:0], z[:0])
    for part in parts:
        merged.merge(part)
    merged.merge(CoMoments(x.shape[1], z.shape[1]))
    _assert_equal_to_two_pass(merged, x, z)
    parts[0].update(x[100:101], z[100:101])  # updates after a merge's read share the running shift
    parts[0].merge(parts[2])
    _assert_equal_to_two_pass(parts[0], x, z)


def test_float32_chunks_are_cast_exactly() -> None:
    x, z = _data()
    x32, z32 = (x - 1e3).astype(np.float32), z.astype(np.float32)
    ours = CoMoments(x.shape[1], z.shape[1])
    for start in range(0, x.shape[0], 50):
        ours.update(x32[start : start + 50], z32[start : start + 50])
    _assert_equal_to_two_pass(ours, x32.astype(np.float64), z32.astype(np.float64))


def test_update_allocates_nothing_of_the_moments_size() -> None:
    """A chunk of 8 rows adds into the (d, d) and (d, k) buffers in place: before, each chunk formed its own
    moments and 4-5 fresh (d, k) temporaries in the merge, so small chunks cost O(d k) each."""
    d, k, rows = 256, 512, 8
    rng = np.random.default_rng(1)
    moments = CoMoments(d, k)
    moments.update(rng.random((rows, d)), rng.random((rows, k)))  # the first chunk sets the shift
    x, z = rng.random((rows, d)), rng.random((rows, k))
    tracemalloc.start()
    try:
        moments.update(x, z)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * d * d / 4, peak  # the chunk's float64 copies (48 KiB), not X^T X (512 KiB)
