"""TopK / BatchTopK sparse autoencoder: planted recovery, exact sparsity, AuxK, determinism, file round trip, the
scale fold, and overcomplete's TopKSAE / BatchTopKSAE as the oracle of the forward maps."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from featflow.dictionary.base import Dictionary, FitContext, Rows
from featflow.dictionary.registry import method
from featflow.dictionary.spec import DictionarySpec, TopKSpec
from featflow.dictionary.topk import (
    Adam,
    TopKDictionary,
    aux_loss,
    batch_topk_codes,
    final_pass,
    fold,
    init_params,
    keep,
    moments,
    reconstruct,
    topk_codes,
    train,
)

torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine

ACTIVE = 3


def planted(n: int = 4000, k: int = 16, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``A = Z D + noise``: ``ACTIVE`` non-negative codes of k signed unit atoms per sample; the atoms are the same
    for every ``seed`` (which draws the samples)."""
    atoms = np.random.default_rng(0).standard_normal((k, d))
    rng = np.random.default_rng(seed + 1)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n, k))
    chosen = np.argsort(rng.random((n, k)), axis=1)[:, :ACTIVE]
    np.put_along_axis(codes, chosen, rng.uniform(0.5, 1.5, (n, ACTIVE)), axis=1)
    a = codes @ atoms + 0.01 * rng.standard_normal((n, d))
    return a.astype(np.float32), atoms


def rows_of(a: np.ndarray) -> Rows:
    return Rows(a.shape[0], a.shape[1], lambda rows: a[rows], torch.device("cpu"))


def spec_of(k: int = 32, **topk: object) -> DictionarySpec:
    return DictionarySpec(method="topk", k=k, topk=TopKSpec(**{"active": ACTIVE, "lr": 1e-2, **topk}))


def fit(a: np.ndarray, spec: DictionarySpec, seed: int = 0) -> TopKDictionary:
    ctx = FitContext(spec.k, torch.Generator().manual_seed(seed), "layer")
    return method("topk").fit(rows_of(a), spec, ctx)


def matched_cosines(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Cosines of the Hungarian matching between the true atoms and found ones (each true atom its own)."""
    cos = truth @ (found / np.linalg.norm(found, axis=1, keepdims=True)).T
    rows, cols = linear_sum_assignment(-cos)
    return cos[rows, cols]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return planted()


@pytest.fixture(scope="module")
def sae(data: tuple[np.ndarray, np.ndarray]) -> TopKDictionary:
    return fit(data[0], spec_of())


@pytest.fixture(scope="module")
def batch_sae(data: tuple[np.ndarray, np.ndarray]) -> TopKDictionary:
    return fit(data[0], spec_of(batch_topk=True))


def test_recovers_planted_atoms(data: tuple[np.ndarray, np.ndarray], sae: TopKDictionary) -> None:
    a, truth = data
    assert isinstance(sae, Dictionary)
    assert matched_cosines(sae.atoms.numpy(), truth).min() > 0.95
    assert torch.allclose(sae.atoms.norm(dim=1), torch.ones(sae.atoms.shape[0]))
    x = torch.from_numpy(a)
    codes = sae.encode(x)
    assert bool((codes >= 0).all())
    assert bool(((codes > 0).sum(1) == ACTIVE).all())  # every trained code has exactly `active` latents
    fvu = (x - sae.decode(codes)).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert float(fvu) < 0.02


def test_a_last_batch_of_one_sample_does_not_derail_training() -> None:
    """16 x 256 + 1 rows: the last batch holds one sample, whose own variance is 0 (the loss is normalized by the
    data's variance: by the batch's, that step's loss was ~1e12 and Adam's moments never recovered, cosine 0.59)."""
    a, truth = planted(n=16 * 256 + 1)
    found = fit(a, spec_of())
    assert matched_cosines(found.atoms.numpy(), truth).min() > 0.95


def test_batch_topk_recovers_and_thresholds(data: tuple[np.ndarray, np.ndarray], batch_sae: TopKDictionary) -> None:
    assert matched_cosines(batch_sae.atoms.numpy(), data[1]).min() > 0.95
    assert batch_sae.threshold is not None and batch_sae.threshold > 0
    fresh, _ = planted(n=2000, seed=1)  # new samples of the same dictionary
    l0 = (batch_sae.encode(torch.from_numpy(fresh)) > 0).sum(1).float().mean()
    assert abs(float(l0) - ACTIVE) < 0.15 * ACTIVE


def test_topk_keeps_the_largest_positive() -> None:
    pre = torch.randn(200, 40, generator=torch.Generator().manual_seed(0)) - 1.5  # some rows have < 5 positives
    codes = topk_codes(pre, 5)
    positives = (pre > 0).sum(1)
    assert torch.equal((codes != 0).sum(1), positives.clamp(max=5))
    kept = codes > 0
    assert torch.equal(codes[kept], pre[kept])
    fifth = pre.topk(5, dim=1).values[:, -1:]
    assert torch.equal(kept, (pre >= fifth) & (pre > 0))


def test_batch_topk_mean_l0_is_active() -> None:
    pre = torch.randn(64, 50, generator=torch.Generator().manual_seed(1)).abs() + 0.1
    codes, smallest = batch_topk_codes(pre, 4)
    assert int((codes > 0).sum()) == 4 * 64  # mean L0 exactly `active` over the batch
    assert float((codes > 0).sum(1).float().mean()) == 4.0
    assert float(codes[codes > 0].min()) == float(smallest)
    assert bool((pre[codes == 0] <= smallest).all())  # the batch's largest, wherever they fall
    assert int((codes > 0).sum(1).max()) > 4 > int((codes > 0).sum(1).min())  # not per-sample TopK


def test_init_is_gao_et_al() -> None:
    """Unit random decoder rows, the encoder their transpose, b_enc 0, b_dec the data mean."""
    mean = torch.arange(6.0)
    params = init_params(9, mean, torch.Generator().manual_seed(4))
    assert torch.allclose(params.atoms.norm(dim=1), torch.ones(9))
    assert torch.equal(params.w_enc, params.atoms)
    assert torch.equal(params.b_dec, mean) and not bool(params.b_enc.any())
    assert all(tensor.requires_grad and tensor.is_leaf for tensor in params.tensors())


def test_adam_matches_torch_optim() -> None:
    generator = torch.Generator().manual_seed(5)
    start = [torch.randn(7, 3, generator=generator), torch.randn(4, generator=generator)]
    ours = [t.clone().requires_grad_(True) for t in start]
    theirs = [t.clone().requires_grad_(True) for t in start]
    mine, reference = Adam(ours, lr=3e-3), torch.optim.Adam(theirs, lr=3e-3)
    target = torch.randn(7, 3, generator=generator)
    for _ in range(20):
        for params, optimizer in ((ours, mine), (theirs, reference)):
            optimizer.zero_grad()
            ((params[0] - target).pow(2).sum() + params[1].pow(3).sum()).backward()
            optimizer.step()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, theirs, strict=True))
    assert not torch.allclose(ours[0], start[0], atol=1e-3)


def test_aux_gradient_reaches_only_dead_latents() -> None:
    generator = torch.Generator().manual_seed(2)
    params = init_params(24, torch.zeros(10), generator)
    x = torch.randn(32, 10, generator=generator)
    dead = torch.zeros(24, dtype=torch.bool)
    dead[[1, 5, 6, 20]] = True
    residual = x - reconstruct(params, keep(params, x, active=3, batch_topk=False), 32)
    aux_loss(params, x, dead, residual, auxk=3).backward()
    for grad in (params.w_enc.grad, params.atoms.grad, params.b_enc.grad[:, None]):
        per_latent = grad.abs().sum(1)
        assert bool((per_latent[~dead] == 0).all())
        assert bool((per_latent[dead] > 0).any())


@pytest.mark.parametrize("batch_topk", [False, True])
def test_sparse_training_step_is_the_dense_one(batch_topk: bool) -> None:
    """The training's kept-pairs forward (values recomputed from gathered encoder rows) gives the dense TopK
    autoencoder's reconstruction and the same gradient for every parameter."""
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(40, 12, generator=generator)
    sparse, dense = (init_params(30, x.mean(0), torch.Generator().manual_seed(7)) for _ in range(2))
    with torch.no_grad():
        for params in (sparse, dense):
            params.b_enc.copy_(torch.linspace(-0.5, 0.5, 30))
    kept = keep(sparse, x, active=4, batch_topk=batch_topk)
    pre = dense.pre_activations(x)
    codes = batch_topk_codes(pre, 4)[0] if batch_topk else topk_codes(pre, 4)
    ours, reference = reconstruct(sparse, kept, 40), torch.addmm(dense.b_dec, codes, dense.atoms)
    assert torch.allclose(ours, reference, atol=1e-5)
    (x - ours).pow(2).sum().backward()
    (x - reference).pow(2).sum().backward()
    for mine, theirs in zip(sparse.tensors(), dense.tensors(), strict=True):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-4)


def test_auxk_revives_latents_of_a_bad_init(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Half the latents start with tiny encoder rows: outcompeted, they never fire and get no gradient from the
    reconstruction; AuxK gives them one."""
    rows = rows_of(data[0])
    stats = moments(rows)
    outcome = {}
    for coef in (0.0, 1 / 32):
        generator = torch.Generator().manual_seed(0)
        params = init_params(32, stats.mean * stats.scale, generator)
        with torch.no_grad():
            params.w_enc[16:] *= 1e-3
        topk = TopKSpec(active=ACTIVE, epochs=10, lr=1e-2, aux_coef=coef, dead_steps=10)
        train(params, rows, topk, stats=stats, generator=generator)
        outcome[coef] = final_pass(params, rows, topk, stats=stats)
    without, revived = outcome[0.0], outcome[1 / 32]
    assert without.dead >= 14  # the crippled latents stay dead
    assert revived.dead <= without.dead - 4
    assert revived.fvu < 0.6 * without.fvu


def test_same_seed_same_weights_and_state_round_trip(data: tuple[np.ndarray, np.ndarray]) -> None:
    a = data[0][:1000]
    spec = spec_of(k=24, epochs=3, batch_topk=True)
    first, again, other = fit(a, spec), fit(a, spec), fit(a, spec, seed=1)
    state = first.state()
    assert set(state) == {"atoms", "W_enc", "b_enc", "b_dec", "scale", "threshold", "active"}
    assert all(np.array_equal(state[name], value) for name, value in again.state().items())
    assert not np.array_equal(state["atoms"], other.state()["atoms"])
    loaded = method("topk").load(state, spec, torch.device("cpu"))
    x = torch.from_numpy(a)
    assert torch.equal(loaded.encode(x), first.encode(x))
    assert torch.equal(loaded.decode(first.encode(x)), first.decode(first.encode(x)))
    assert loaded.encode_report(x)[1] is None


def test_state_alone_defines_the_encoder(batch_sae: TopKDictionary) -> None:
    """A job whose spec carries only part of complexity.dictionary (the codes jobs key on the method and the NNLS
    keys) rebuilds the trained encoder: ``active`` and BatchTopK's threshold travel in the state."""
    loaded = method("topk").load(batch_sae.state(), DictionarySpec(method="topk"), torch.device("cpu"))
    assert loaded.active == ACTIVE and loaded.threshold == batch_sae.threshold
    x = torch.from_numpy(planted(n=300, seed=5)[0])
    assert torch.equal(loaded.encode(x), batch_sae.encode(x))


def test_fold_keeps_the_trained_map_in_layer_units() -> None:
    """The stored dictionary codes the layer's activations as the scaled-units SAE codes ``a * scale``, divided
    by ``scale``: both encoders, decode, and BatchTopK's threshold."""
    generator = torch.Generator().manual_seed(3)
    params = init_params(20, torch.randn(8, generator=generator), generator)
    with torch.no_grad():
        params.b_enc.copy_(torch.randn(20, generator=generator))
    a, scale = torch.randn(50, 8, generator=generator) * 7.0, 0.25
    pre = params.pre_activations(a * scale).detach()
    topk = fold(params, active=4, scale=scale, threshold=None)
    assert torch.allclose(topk.encode(a), topk_codes(pre, 4) / scale, atol=1e-5)
    codes = topk.encode(a)
    expected = (codes * scale) @ params.atoms.detach() + params.b_dec.detach()
    assert torch.allclose(topk.decode(codes), expected / scale, atol=1e-4)
    batch = fold(params, active=4, scale=scale, threshold=0.5)
    assert torch.allclose(batch.encode(a), pre.relu() * (pre >= 0.5) / scale, atol=1e-5)


@pytest.mark.parametrize("batch", [False, True])
def test_gate_gives_the_codes_and_gradients(batch: bool, sae: TopKDictionary, batch_sae: TopKDictionary) -> None:
    """The pictures' view of the encoder (featflow.fv.atoms.Gated): codes are pre where pre >= threshold, and
    they are differentiable in the input."""
    from featflow.fv.atoms import Gated

    dictionary = batch_sae if batch else sae
    assert isinstance(dictionary, Gated)
    x = torch.from_numpy(planted(n=64, seed=2)[0]).requires_grad_(True)
    pre, threshold = dictionary.gate(x)
    codes = dictionary.encode(x)
    assert torch.allclose(codes, pre * (pre >= threshold), atol=1e-6)
    latent = int(codes.sum(0).argmax())
    codes[:, latent].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_active_above_k_is_an_early_error(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="complexity.dictionary.topk.active"):
        fit(data[0][:100], spec_of(k=4, active=8))


# overcomplete (Fel et al.'s library) as the oracle of the forward maps. Every release requires opencv-python and
# timm, so it is no test dependency: where it is installed, its module files are loaded without its package
# __init__ (which imports cv2 and matplotlib's removed get_cmap); elsewhere these tests skip.


@pytest.fixture
def overcomplete() -> Iterator[types.SimpleNamespace]:
    found = importlib.util.find_spec("overcomplete")
    if found is None or not found.submodule_search_locations:
        pytest.skip("overcomplete is not installed (it requires opencv-python: not a test dependency)")
    pytest.importorskip("einops")
    root = Path(list(found.submodule_search_locations)[0])
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "overcomplete"}
    for name, folder in (("overcomplete", root), ("overcomplete.sae", root / "sae")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(folder)]
        sys.modules[name] = stub
    try:
        sys.modules["overcomplete.sae"].SAE = importlib.import_module("overcomplete.sae.base").SAE
        yield types.SimpleNamespace(
            TopKSAE=importlib.import_module("overcomplete.sae.topk_sae").TopKSAE,
            BatchTopKSAE=importlib.import_module("overcomplete.sae.batchtopk_sae").BatchTopKSAE,
            TieableEncoder=importlib.import_module("overcomplete.sae.modules").TieableEncoder,
        )
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "overcomplete"]:
            del sys.modules[name]
        sys.modules.update(saved)


def _theirs(overcomplete: types.SimpleNamespace, ours: TopKDictionary, cls: type, **kwargs: object) -> object:
    """Their SAE with our weights: a linear encoder ``a W^T + (b_enc - W b_dec)``, our atoms as its dictionary."""
    k, d = ours.atoms.shape
    encoder = overcomplete.TieableEncoder(d, k, bias=True, weight_init=ours.w_enc)
    with torch.no_grad():
        encoder.bias.copy_(ours.b_enc - ours.w_enc @ ours.b_dec)
    model = cls(d, k, encoder_module=encoder, dictionary_params={"initializer": ours.atoms.numpy()}, **kwargs)
    return model.eval()


def test_overcomplete_topk_forward_agrees(overcomplete: types.SimpleNamespace, sae: TopKDictionary) -> None:
    x = torch.from_numpy(planted(n=500, seed=3)[0])
    theirs = _theirs(overcomplete, sae, overcomplete.TopKSAE, top_k=ACTIVE)
    with torch.no_grad():
        _, codes = theirs.encode(x)
        assert torch.allclose(sae.encode(x), codes, atol=1e-5)
        assert torch.allclose(sae.decode(codes), theirs.decode(codes) + sae.b_dec, atol=1e-5)


def test_overcomplete_batch_topk_agrees(overcomplete: types.SimpleNamespace, batch_sae: TopKDictionary) -> None:
    x = torch.from_numpy(planted(n=256, seed=4)[0])
    theirs = _theirs(overcomplete, batch_sae, overcomplete.BatchTopKSAE, top_k=ACTIVE * 256)
    theirs.running_threshold = torch.tensor(batch_sae.threshold)
    with torch.no_grad():
        assert torch.allclose(batch_sae.encode(x), theirs.encode(x)[1], atol=1e-5)  # inference: the threshold
        theirs.train()  # training: the batch's ACTIVE * 256 largest
        train_codes = batch_topk_codes(batch_sae.pre_activations(x), ACTIVE)[0]
        assert torch.allclose(train_codes, theirs.encode(x)[1], atol=1e-5)
