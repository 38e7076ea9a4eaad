"""Method ``file``: a dictionary trained elsewhere, read from .safetensors / .npz / .pt, encodes by its own formula
(an SAE) or by NNLS (decoder atoms only), and bad files fail early naming complexity.dictionary.file.path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from featflow.dictionary import files, loaded
from featflow.dictionary.base import FitContext, Rows
from featflow.dictionary.nmf import NMFDictionary
from featflow.dictionary.registry import method
from featflow.dictionary.spec import DictionarySpec, FileSpec
from tools.make_dictionary_file import main, random_sae, write

K, D = 12, 8
KEY = "complexity.dictionary.file.path"


def _spec(path: Path | None, **keys) -> DictionarySpec:
    return DictionarySpec(method="file", k=999, file=FileSpec(path=None if path is None else str(path)), **keys)


def _rows(a: np.ndarray) -> Rows:
    return Rows(n=a.shape[0], d=a.shape[1], read=lambda rows: a[rows], device=torch.device("cpu"))


def _ctx(layer: str = "block3") -> FitContext:
    return FitContext(k=999, generator=torch.Generator().manual_seed(0), layer=layer)


def _fit(path: Path, a: np.ndarray, **keys):
    return method("file").fit(_rows(a), _spec(path, **keys), _ctx())


def _sae(seed: int = 0) -> dict[str, np.ndarray]:
    """An SAE with non-zero biases (so that centering and each bias change the codes)."""
    arrays = random_sae(K, D, seed)
    rng = np.random.default_rng(seed + 1)
    arrays["b_enc"] = (0.3 * rng.standard_normal(K)).astype(np.float32)
    arrays["b_dec"] = rng.standard_normal(D).astype(np.float32)
    return arrays


def _activations(n: int = 40, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt"])
def test_each_format_encodes_and_decodes_by_the_saelens_formula_and_survives_its_state(
    tmp_path: Path, suffix: str
) -> None:
    sae, a = _sae(), _activations()
    path = tmp_path / f"sae{suffix}"
    write(path, sae)
    dictionary = _fit(path, a)
    z = dictionary.encode(torch.from_numpy(a)).numpy()
    expected = _relu((a - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"])
    assert (expected > 0).any() and (expected == 0).any()
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        dictionary.decode(torch.from_numpy(z)).numpy(), z @ sae["W_dec"] + sae["b_dec"], atol=1e-5
    )
    codes, report = dictionary.encode_report(torch.from_numpy(a))
    assert report is None and torch.equal(codes, torch.from_numpy(z))
    np.testing.assert_array_equal(dictionary.atoms.numpy(), sae["W_dec"])  # the file's atoms, not rescaled
    assert dictionary.signed_atoms and not dictionary.signed_codes
    again = method("file").load(dictionary.state(), _spec(path), torch.device("cpu"))
    np.testing.assert_allclose(again.encode(torch.from_numpy(a)).numpy(), z, atol=1e-6)


def test_the_state_goes_through_the_dictionary_file_as_any_method_does(tmp_path: Path) -> None:
    """Scalars (top-k, centering) included: the stored dictionary encodes like the one read from the file."""
    import h5py

    sae, a = _sae(), _activations()
    sae["k"] = np.asarray(3)
    write(tmp_path / "sae.npz", sae)
    dictionary = _fit(tmp_path / "sae.npz", a)
    with h5py.File(tmp_path / "dictionary.h5", "w") as handle:
        files.write(handle, dictionary)
        arrays = {name: handle[f"state/{name}"][()] for name in handle["state"]}
        arrays["atoms"] = handle["atoms"][()]
    again = loaded.build(arrays, _spec(tmp_path / "sae.npz"), torch.device("cpu"))
    torch.testing.assert_close(again.encode(torch.from_numpy(a)), dictionary.encode(torch.from_numpy(a)))


def test_a_torch_linear_pair_is_read_transposed_and_encodes_as_the_module_does(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({"encoder": torch.nn.Linear(D, K), "decoder": torch.nn.Linear(K, D)})
    torch.save(module.state_dict(), tmp_path / "sae.pth")
    a = torch.from_numpy(_activations())
    dictionary = _fit(tmp_path / "sae.pth", a.numpy())
    with torch.no_grad():
        expected = torch.relu(module["encoder"](a))
        torch.testing.assert_close(dictionary.encode(a), expected)
        torch.testing.assert_close(dictionary.decode(expected), module["decoder"](expected))
    assert dictionary.atoms.shape == (K, D)
    assert loaded.describe(tmp_path / "sae.pth") == (K, D, "sae")


def test_a_checkpoint_holding_the_sae_under_one_prefix_is_read_under_it(tmp_path: Path) -> None:
    sae, a = _sae(), _activations()
    tensors = {name: torch.from_numpy(value) for name, value in sae.items()}
    torch.save(
        {"state_dict": {f"module.{name}": value for name, value in tensors.items()}, "epoch": 3}, tmp_path / "c.pt"
    )
    z = _fit(tmp_path / "c.pt", a).encode(torch.from_numpy(a)).numpy()
    np.testing.assert_allclose(z, _relu((a - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"]), atol=1e-5)
    assert loaded.describe(tmp_path / "c.pt") == (K, D, "sae")
    torch.save({"a": tensors, "b": tensors}, tmp_path / "two.pt")  # two SAEs: which one is not guessed
    with pytest.raises(ValueError, match=rf"{KEY} .*no decoder atoms; the file holds \['a.W_dec'"):
        _fit(tmp_path / "two.pt", a)


def test_a_jumprelu_threshold_zeroes_the_codes_below_it(tmp_path: Path) -> None:
    """SAELens's inference form ReLU(pre) * (pre > threshold): a negative threshold lets no negative code through."""
    sae, a = _sae(), _activations()
    pre = (a - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"]
    threshold = np.full(K, float(np.median(pre[pre > 0])), dtype=np.float32)
    threshold[::3] = -0.5
    write(tmp_path / "jump.safetensors", sae | {"threshold": threshold})
    z = _fit(tmp_path / "jump.safetensors", a).encode(torch.from_numpy(a)).numpy()
    expected = _relu(pre) * (pre > threshold)
    assert (expected != _relu(pre)).any() and (expected != pre * (pre > threshold)).any()
    np.testing.assert_allclose(z, expected, atol=1e-5)


def test_a_topk_sae_keeps_the_k_largest_codes_of_each_sample(tmp_path: Path) -> None:
    a = _activations()
    main([str(tmp_path / "topk.npz"), "--k", str(K), "--d", str(D), "--seed", "3", "--active", "3"])
    sae = dict(np.load(tmp_path / "topk.npz"))
    z = _fit(tmp_path / "topk.npz", a).encode(torch.from_numpy(a)).numpy()
    dense = _relu((a - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"])
    kept = np.sort(dense, axis=1)[:, -3:]
    assert ((z > 0).sum(axis=1) <= 3).all()
    np.testing.assert_allclose(np.sort(z, axis=1)[:, -3:], kept, atol=1e-5)
    np.testing.assert_allclose(z[z > 0], dense[z > 0], atol=1e-5)


def test_a_saelens_cfg_beside_the_weights_sets_centering_and_its_unsupported_settings_are_refused(
    tmp_path: Path,
) -> None:
    sae, a = _sae(), _activations()
    write(tmp_path / "sae_weights.safetensors", sae)
    cfg = {"d_in": D, "d_sae": K, "architecture": "standard", "apply_b_dec_to_input": False}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    z = _fit(tmp_path / "sae_weights.safetensors", a).encode(torch.from_numpy(a)).numpy()
    np.testing.assert_allclose(z, _relu(a @ sae["W_enc"] + sae["b_enc"]), atol=1e-5)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg | {"normalize_activations": "expected_average_only_in"}))
    with pytest.raises(ValueError, match=f"{KEY}.*normalize_activations"):
        _fit(tmp_path / "sae_weights.safetensors", a)


def test_a_decoder_only_file_codes_by_nnls_and_recovers_a_planted_nonnegative_combination(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    atoms = rng.standard_normal((6, 20)) * rng.uniform(0.5, 3.0, (6, 1))  # signed, rows of several norms
    codes = rng.uniform(0.0, 2.0, (30, 6)) * (rng.random((30, 6)) < 0.5)
    a = (codes @ atoms).astype(np.float32)
    np.savez(tmp_path / "atoms.npz", atoms=atoms.astype(np.float32))
    dictionary = _fit(tmp_path / "atoms.npz", a, code_ridge=1e-4, code_tol=1e-6, code_iterations=1000)
    assert isinstance(dictionary, NMFDictionary)
    norms = np.linalg.norm(atoms, axis=1)
    np.testing.assert_allclose(dictionary.atoms.norm(dim=1).numpy(), 1.0, atol=1e-6)  # unit rows
    z = dictionary.encode(torch.from_numpy(a)).numpy()
    assert (z >= 0).all()
    np.testing.assert_allclose(z, codes * norms, atol=1e-2)  # the ridge (1e-4) shrinks them by ~1e-3
    assert loaded.describe(tmp_path / "atoms.npz") == (6, 20, "decoder")


def _expect_error(tmp_path: Path, arrays: dict[str, np.ndarray], match: str, d: int = D) -> None:
    write(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=match):
        _fit(tmp_path / "bad.npz", _activations()[:, :d] if d <= D else np.zeros((4, d), np.float32))


def test_a_missing_unreadable_or_unknown_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    a = _activations()
    with pytest.raises(ValueError, match=f"{KEY} is null"):
        method("file").fit(_rows(a), _spec(None), _ctx())
    with pytest.raises(FileNotFoundError, match=f"{KEY} '.*nowhere.npz': no such file"):
        _fit(tmp_path / "nowhere.npz", a)
    (tmp_path / "sae.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=f"{KEY} .*unknown format '.h5'"):
        _fit(tmp_path / "sae.h5", a)
    (tmp_path / "saev.pt").write_bytes(b'{"schema": 5}\n')
    with pytest.raises(ValueError, match=f"{KEY} .*saev"):
        _fit(tmp_path / "saev.pt", a)


def test_a_file_without_recognized_atoms_lists_its_keys_and_the_accepted_names(tmp_path: Path) -> None:
    _expect_error(
        tmp_path, {"weights": np.ones((K, D), np.float32)}, rf"{KEY} .*\['weights'\].*'W_dec'.*'decoder.weight'"
    )


@pytest.mark.parametrize(
    ("key", "shape"), [("W_enc", (K, D)), ("b_enc", (D,)), ("b_dec", (K,)), ("threshold", (K + 1,))]
)
def test_an_encoder_array_inconsistent_with_the_decoder_is_an_error(tmp_path: Path, key: str, shape) -> None:
    sae = _sae()
    sae[key] = np.ones(shape, np.float32)
    _expect_error(tmp_path, sae, rf"{KEY} .*{key} has shape .*inconsistent with the decoder W_dec \({K}, {D}\)")


def test_ambiguous_or_incomplete_files_are_errors(tmp_path: Path) -> None:
    sae = _sae()
    _expect_error(tmp_path, sae | {"atoms": sae["W_dec"]}, rf"{KEY} .*\['atoms', 'W_dec'\] all give the atoms")
    _expect_error(tmp_path, {"W_dec": sae["W_dec"], "b_dec": sae["b_dec"]}, rf"{KEY} .*\['b_dec'\] without an encoder")
    _expect_error(tmp_path, sae | {"k": np.asarray(K + 1)}, rf"{KEY} .*top-k {K + 1}")


def test_the_width_is_checked_against_the_layer_before_the_file_is_read(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "sae.safetensors", _sae())
    monkeypatch.setattr(loaded, "read", lambda path: pytest.fail("the file was read before its width was checked"))
    with pytest.raises(ValueError, match=rf"{KEY} .*width d={D}, but layer 'block3' has width {D + 2}"):
        _fit(tmp_path / "sae.safetensors", np.zeros((4, D + 2), np.float32))
    assert loaded.check(_spec(tmp_path / "sae.safetensors"), width=D, layer="block3") == (
        tmp_path / "sae.safetensors",
        K,
    )


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_describe_reads_shapes_without_loading_the_arrays(tmp_path: Path, monkeypatch, suffix: str) -> None:
    import safetensors.torch

    write(tmp_path / f"sae{suffix}", random_sae(K, D, 0))
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("np.load"))
    monkeypatch.setattr(safetensors.torch, "load_file", lambda *args, **kwargs: pytest.fail("load_file"))
    assert loaded.describe(tmp_path / f"sae{suffix}") == (K, D, "sae")


def test_a_file_sae_runs_the_dictionary_and_codes_stages(tmp_path: Path) -> None:
    """Through the complexity branch's entry points: the stored dictionary is the file's, its codes its formula."""
    from featflow import store
    from featflow.complexity.codes import encode_split
    from featflow.complexity.dictionary import fit_dictionary
    from featflow.complexity.spec import ComplexitySpec
    from tests.complexity_data import write_complexity_inputs

    paths = write_complexity_inputs(tmp_path, n=40, d=D, n_layers=1, k=6)
    main([str(tmp_path / "sae.safetensors"), "--k", str(K), "--d", str(D), "--seed", "4"])
    spec = ComplexitySpec.from_dict(
        {"dictionary": {"method": "file", "file": {"path": str(tmp_path / "sae.safetensors")}}}
    )
    out, codes, cpu = tmp_path / "dictionary.h5", tmp_path / "codes.h5", torch.device("cpu")
    inputs = {"activations": paths["activations"], "checkpoint": paths["checkpoint"]}
    fit_dictionary(spec, layer="act", **inputs, out=out, device=cpu, seed=0, attrs={})
    encode_split(spec, dictionary=out, **inputs, out=codes, device=cpu, attrs={})
    arrays = random_sae(K, D, 4)
    np.testing.assert_array_equal(store.read_items(out, "complexity-dictionary", ["atoms"])["atoms"], arrays["W_dec"])
    acts = store.read_items(paths["activations"], "activations", ["layers/act"])["layers/act"]
    expected = _relu((acts - arrays["b_dec"]) @ arrays["W_enc"] + arrays["b_enc"])
    assert (expected > 0).mean() > 0.1
    np.testing.assert_allclose(store.read_h5(codes, "complexity-codes")["codes"], expected, atol=1e-5)
