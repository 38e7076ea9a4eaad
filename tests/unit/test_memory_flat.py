"""Memory flat in N (issue 28.5): a streaming stage holds one chunk at a time, never the previous one too."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
import torch

from featflow import store
from featflow.complexity import codes as codes_stage
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary.nmf import NMFDictionary
from tests.complexity_data import write_complexity_inputs


def test_codes_free_each_chunk_before_reading_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The codes stage's tensors of a chunk (activations, codes, reconstructions) are gone when the next chunk is
    read: held over, they added one chunk's working set to the peak from the second chunk on."""
    inputs = write_complexity_inputs(tmp_path, n=90, d=8, n_layers=1, k=12)
    alive: list[weakref.ref] = []
    encode, rows = NMFDictionary.encode_report, store.iter_rows

    def tracked_encode(self, a):
        codes, report = encode(self, a)
        alive.extend([weakref.ref(a), weakref.ref(codes)])
        return codes, report

    def checked_rows(*args, **kwargs):
        for item in rows(*args, **kwargs, rows=20):
            yield item
            assert all(ref() is None for ref in alive), "a chunk's tensors outlive it"

    monkeypatch.setattr(NMFDictionary, "encode_report", tracked_encode)
    monkeypatch.setattr(codes_stage.store, "iter_rows", checked_rows)
    spec = ComplexitySpec.from_dict({})
    out = tmp_path / "codes.h5"
    files = {key: inputs[key] for key in ("dictionary", "activations", "checkpoint")}
    codes_stage.encode_split(spec, **files, out=out, device=torch.device("cpu"), attrs={})
    assert len(alive) == 10 and store.shapes(out, "complexity-codes")["codes"] == (90, 12)
