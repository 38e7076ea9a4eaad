"""Temporal decoding streams its two files: I_V equal to the in-memory V-information at any chunk size, and no
whole-dataset read (its memory does not grow with the number of images, bench/bench_memory.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featflow import store
from featflow.complexity.spec import ComplexitySpec
from featflow.metrics import vinfo
from featflow.temporal.run import decode_epoch

N, D, K = 300, 12, 7


def _inputs(root: Path) -> tuple[Path, Path, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(N, 5))
    layers = {f"l{i}": np.maximum(latent @ rng.normal(size=(5, D)), 0).astype(np.float32) for i in range(3)}
    factors = np.stack([latent[:, 0], latent[:, 1] ** 2], 1)
    codes = np.abs(latent @ rng.normal(size=(5, K)) + 0.1 * rng.normal(size=(N, K))).astype(np.float32)
    acts, codes_path = root / "acts.h5", root / "codes.h5"
    arrays = {"layers": layers, "labels": rng.integers(0, 3, N), "factors": factors}
    store.write_h5(acts, "activations", arrays, {"layers": list(layers), "factor_names": ["a", "b"], "accuracy": 0.5})
    store.write_h5(codes_path, "complexity-codes", {"codes": codes}, {})
    return acts, codes_path, layers, codes, factors


def test_decode_epoch_streams_and_matches_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    acts, codes_path, layers, codes, factors = _inputs(tmp_path)
    spec = ComplexitySpec.from_dict({})
    v = spec.vinfo
    want_iv = vinfo.v_information(layers, codes, v.test_fraction, 3, v.ridge_scale)
    want_f = vinfo.v_information(layers, factors, v.test_fraction, 3, v.ridge_scale)

    def no_whole_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("decode_epoch read a whole file (memory grows with the number of images)")

    monkeypatch.setattr(store, "read_h5", no_whole_read)
    for budget in (1 << 30, 5000):  # one chunk; chunks of ~25 rows that do not divide N
        monkeypatch.setattr(store, "CHUNK_BYTES", budget)
        out = tmp_path / f"decoding{budget}.h5"
        decode_epoch(acts_path=acts, codes_path=codes_path, spec=spec, epoch=2, out=out, seed=3, attrs={})
        monkeypatch.undo()
        got = store.read_h5(out, "temporal-decoding")
        np.testing.assert_allclose(got["iv"], want_iv, atol=1e-10)
        np.testing.assert_allclose(got["factor_iv"], want_f, atol=1e-10)
        monkeypatch.setattr(store, "read_h5", no_whole_read)
    assert store.read_attrs(out, "temporal-decoding")["epoch"] == 2
