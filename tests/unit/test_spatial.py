"""Issue 16.4: per-position activations stored on request, and a dictionary fit on positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from featflow import store
from featflow.activations import extract_shard_to_h5, extract_to_h5, merge_shards
from featflow.complexity.dictionary import fit_dictionary
from featflow.complexity.spec import ComplexitySpec
from featflow.config import ActivationsSpec, ModelSpec
from featflow.models import build_model, forward_to, load_checkpoint
from featflow.models.checkpoint import save_checkpoint
from featflow.names import checked
from tests.folder_data import planted_and_cnn

CPU = torch.device("cpu")
LAYERS = ("block2", "block3", "act")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return planted_and_cnn(tmp_path_factory.mktemp("spatial"))


def test_spatial_maps_are_the_layer_outputs_and_shard_like_the_rest(inputs, tmp_path: Path) -> None:
    data, checkpoint = inputs
    spec = ActivationsSpec(batch_size=8, spatial=("block3",))
    extract_to_h5(checkpoint, data, "test", LAYERS, spec, tmp_path / "one.h5", device=CPU, attrs={})
    acts = store.read_h5(tmp_path / "one.h5", "activations")
    assert store.read_attrs(tmp_path / "one.h5")["spatial"] == ["block3"] and set(acts["spatial"]) == {"block3"}
    model, _ = load_checkpoint(checkpoint)
    from featflow.data import load_split

    with torch.no_grad():
        maps = forward_to(model, load_split(data, "test").x, "block3").numpy()
    np.testing.assert_allclose(acts["spatial"]["block3"], maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["spatial"]["block3"].mean((2, 3)), acts["layers"]["block3"], atol=1e-6)
    sharded = ActivationsSpec(batch_size=8, spatial=("block3",), shards=3)
    parts = [tmp_path / f"part_{i}.h5" for i in range(3)]
    for i, path in enumerate(parts):
        extract_shard_to_h5(checkpoint, data, "test", LAYERS, sharded, shard=i, out_path=path, device=CPU, attrs={})
    merge_shards(parts, tmp_path / "merged.h5", {})
    merged = store.read_h5(tmp_path / "merged.h5", "activations")
    np.testing.assert_array_equal(merged["spatial"]["block3"], acts["spatial"]["block3"])
    with pytest.raises(ValueError, match="not a \\(C, H, W\\) map"):
        extract_to_h5(
            checkpoint, data, "test", LAYERS, ActivationsSpec(spatial=("act",)), tmp_path / "x.h5", device=CPU, attrs={}
        )


def _planted_positions(root: Path, atoms: np.ndarray, n: int = 60, side: int = 6) -> tuple[Path, Path]:
    """An activations file whose ``conv`` maps mix the given atoms per position (sparsely), each image holding
    each atom in the same total amount (so every pooled vector is the same), and a checkpoint whose last linear
    layer reads the atoms' channels (for the codes' accuracy)."""
    rng = np.random.default_rng(0)
    k, c = atoms.shape
    weights = rng.exponential(size=(n, side, side, k)) * (rng.random((n, side, side, k)) < 0.3) + 1e-3
    weights /= weights.sum((1, 2), keepdims=True)  # every image holds each atom equally: its pooled vector is flat
    maps = np.einsum("nhwk,kc->nchw", weights, atoms).astype(np.float32)
    path = root / "acts.h5"
    spec = ModelSpec(arch="mlp", dataset="d", width=c)
    torch.manual_seed(0)
    checkpoint, model = root / "mlp.pt", build_model(spec, (c,), 3)
    save_checkpoint(checkpoint, model, spec, (c,), 3, {})
    with torch.no_grad():  # the head reads the pooled vectors (c wide): the logits an extraction would store
        logits = model.body.fc(torch.from_numpy(maps.mean((2, 3)))).numpy()
    with store.h5_writer(path, "activations", {"layers": ["conv"], "spatial": ["conv"]}) as handle:
        store.append_rows(handle, "layers/conv", maps.mean((2, 3)))
        store.append_rows(handle, "spatial/conv", maps)
        store.append_rows(handle, "labels", rng.integers(0, 3, n))
        store.append_rows(handle, "logits", logits)
    return path, checkpoint


@pytest.mark.parametrize("batch_size", [None, 128])
def test_a_dictionary_fit_on_positions_recovers_the_position_atoms(tmp_path: Path, batch_size) -> None:
    """Known answer: each position's channels are a sparse non-negative mix of 4 atoms; the NMF on the N H W
    positions (full batch or streamed) finds them, and the images are encoded by their pooled vectors. Fit on
    the pooled vectors (all alike here), it cannot."""
    rng = np.random.default_rng(1)
    atoms = np.abs(rng.normal(size=(4, 10))) ** 4
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    acts, checkpoint = _planted_positions(tmp_path, atoms)
    dictionary = {"k": 4, "iterations": 300, "tol": 0, "positions": True, "second_seed": False}
    dictionary |= {"batch_size": batch_size, "epochs": 30} if batch_size else {}
    spec = ComplexitySpec.from_dict({"dictionary": dictionary})
    out = tmp_path / "dictionary.h5"
    fit_dictionary(spec, layer="conv", activations=acts, checkpoint=checkpoint, out=out, device=CPU, seed=0, attrs={})
    found = store.read_h5(out, "complexity-dictionary")
    attrs = store.read_attrs(out)
    assert attrs["fit_on"] == "positions" and attrs["fit_samples"] == 60 * 36
    cos = found["atoms"] @ atoms.T
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-cos)
    assert cos[rows, cols].min() > 0.95, cos
    assert found["codes"].shape == (60, 4)
    pooled = ComplexitySpec.from_dict({"dictionary": {**dictionary, "positions": False}})
    fit_dictionary(
        pooled, layer="conv", activations=acts, checkpoint=checkpoint, out=tmp_path / "pooled.h5", device=CPU, seed=0,
        attrs={},
    )  # fmt: skip
    cos = store.read_h5(tmp_path / "pooled.h5", "complexity-dictionary")["atoms"] @ atoms.T
    assert store.read_attrs(tmp_path / "pooled.h5")["fit_samples"] == 60
    assert cos[linear_sum_assignment(-cos)].min() < 0.9


def test_positions_and_spatial_are_checked_before_any_job() -> None:
    base = {
        "datasets": {"p": {"kind": "planted", "n_train": 64, "n_test": 32}},
        "models": {"cnn": {"arch": "smallcnn", "dataset": "p", "width": 4}},
        "experiments": {"e": {"model": "cnn", "dataset": "p", "layers": ["block3", "act"]}},
    }

    def config(spatial: list[str], pool: str = "gap", layer: str | None = "block3") -> dict:
        exp = {**base["experiments"]["e"], "activations": {"spatial": spatial, "pool": pool}}
        complexity = {"experiments": ["e"], "dictionary": {"layer": layer, "positions": True}}
        return {**base, "experiments": {"e": exp}, "complexity": complexity}

    checked(config(["block3"]), check_paths=False)
    for cfg, message in (
        (config(["block1"]), r"activations.spatial': \['block1'\] are not among its layers"),
        (config([]), "stores no per-position maps of its dictionary layer 'block3'"),
        (config(["block3"], pool="grid2"), "expected activations.pool: gap"),
        (config(["act"], layer="act"), r"\['act'\] of model 'cnn' give no \(C, H, W\) maps"),
    ):
        with pytest.raises(ValueError, match=message):
            checked(cfg, check_paths=False)
