"""Feature flow through residual connections: the two paths into a block, and what each carries of a feature."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow.activations import pool
from featflow.complexity.flow import (
    PairedColumns,
    block_gain,
    code_retention,
    path_information,
    path_moments,
    retention_rhos,
    skip_share,
)
from featflow.config import ModelSpec
from featflow.dictionary.nmf import NMFDictionary
from featflow.metrics.cka import linear_cka
from featflow.metrics.moments import CoMoments
from featflow.models import forward_to
from featflow.models.registry import Classifier, build_model
from featflow.models.residual import capture_paths, main_zeroed, residual_blocks, select_blocks
from featflow.names import checked


def smallresnet() -> Classifier:
    torch.manual_seed(0)
    return build_model(ModelSpec(arch="smallresnet", dataset="d", width=4), (3, 32, 32), 5).eval()


def resnet18() -> Classifier:
    torch.manual_seed(0)
    return build_model(ModelSpec(arch="resnet18", dataset="d", cifar_stem=True), (3, 32, 32), 5).eval()


def test_blocks_are_found_with_their_skip_kind() -> None:
    blocks = residual_blocks(smallresnet())
    assert [(b.name, b.skip, b.main, b.identity) for b in blocks] == [
        ("block1", "block1.skip", "block1.main", True),
        ("block2", "block2.skip", "block2.main", False),
        ("block3", "block3.skip", "block3.main", False),
    ]
    tv = residual_blocks(resnet18())
    assert [b.name for b in tv] == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert tv[0].skip is None and tv[0].main == "layer1.0.bn2" and tv[0].identity
    assert tv[2].skip == "layer2.0.downsample" and not tv[2].identity
    with pytest.raises(ValueError, match="no residual blocks"):
        select_blocks(build_model(ModelSpec(arch="smallcnn", dataset="d", width=4), (3, 32, 32), 5), None)
    with pytest.raises(ValueError, match=r"complexity.flow.blocks.*block1"):
        select_blocks(smallresnet(), ["block9"])


@pytest.mark.parametrize("make, last", [(smallresnet, "block3"), (resnet18, "layer4.1")])
def test_the_paths_add_up_to_the_block(make, last) -> None:
    """At 4 x 4 (``grid4`` pooling is then the identity) each block's output is relu(skip + main) exactly: the
    main branch is read before torchvision adds the skip into it in place, and an identity skip is the input."""
    model = make()
    blocks = residual_blocks(model)
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad(), capture_paths(model, blocks, "grid4") as out:
        model(x)
        inputs: dict[str, torch.Tensor] = {}

        def keep_input(_module: torch.nn.Module, args: tuple) -> None:
            inputs["x"] = args[0].flatten(1)

        hook = dict(model.body.named_modules())[last].register_forward_pre_hook(keep_input)
        model(x)
        hook.remove()
    torch.testing.assert_close(out[f"{last}/out"], torch.relu(out[f"{last}/skip"] + out[f"{last}/main"]))
    assert out[f"{last}/main"].abs().sum() > 0 and not torch.equal(out[f"{last}/main"], out[f"{last}/out"])
    identity = [b for b in blocks if b.identity and b.name == last]
    if identity:  # resnet18's layer4.1 has an identity skip: its skip path is the block's input
        torch.testing.assert_close(out[f"{last}/skip"], inputs["x"])


def _paths_and_targets(n: int = 600) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two paths into one block: z_0 is linear in the skip, z_1 in the main branch, z_2 in neither."""
    rng = np.random.default_rng(0)
    skip, main = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    z = np.stack([skip @ rng.normal(size=5), main @ rng.normal(size=5), rng.normal(size=n)], 1)
    return {"skip": skip, "main": main, "out": np.maximum(skip + main, 0)}, z


def test_information_follows_the_path_that_carries_it() -> None:
    """Known answers: a target linear in one path has I_V 1 from it and about 0 from the other; CKA equals the
    reference linear CKA on all rows; the skip share is 1, 0 and undefined-or-noise accordingly."""
    paths, z = _paths_and_targets()
    fit = np.random.default_rng(1).random(z.shape[0]) < 0.8
    block = residual_blocks(smallresnet())[:1]
    fits = {f"block1/{p}": CoMoments.of(x[fit], z[fit]) for p, x in paths.items()}
    helds = {f"block1/{p}": CoMoments.of(x[~fit], z[~fit]) for p, x in paths.items()}
    iv, cka = path_information(fits, helds, block, 1e-6)
    np.testing.assert_allclose(iv[0, 0, 0], 1.0, atol=1e-6)  # z_0 from the skip
    np.testing.assert_allclose(iv[1, 0, 1], 1.0, atol=1e-6)  # z_1 from the main branch
    assert iv[1, 0, 0] < 0.05 and iv[0, 0, 1] < 0.05 and iv[:2, 0, 2].max() < 0.05
    for p, name in enumerate(("skip", "main", "out")):
        for j in range(3):
            np.testing.assert_allclose(cka[p, 0, j], linear_cka(paths[name], z[:, j : j + 1]), rtol=1e-9)
    share = skip_share(iv[0], iv[1])
    assert share[0] > 0.95 and share[1] < 0.05
    np.testing.assert_allclose(block_gain(iv[0], iv[2]), iv[2, 0] - iv[0, 0])


def test_moments_of_a_network_stream_batch_by_batch() -> None:
    """path_moments over batches equals the moments of all rows at once; a target equal to a channel of the
    identity skip of block1 (the stem's pooled output) is decoded from it exactly; stored activations that do
    not match the block outputs show up as a deviation."""
    model = smallresnet()
    blocks = residual_blocks(model)
    x = torch.rand(90, 3, 32, 32)
    with torch.no_grad(), capture_paths(model, blocks, "gap") as out:
        model(x)
        every = {key: value.double().numpy() for key, value in out.items()}
    z = np.concatenate([every["block1/skip"][:, :1], every["block3/out"][:, :2] ** 2], 1)
    fit = np.random.default_rng(0).random(90) < 0.8
    batches = (x[i : i + 32] for i in range(0, 90, 32))
    fits, helds, deviation = path_moments(
        model,
        blocks,
        batches,
        lambda a, b: z[a:b],
        fit,
        "gap",
        torch.device("cpu"),
        lambda a, b: {"block2": every["block2/out"][a:b]},
    )
    assert deviation < 1e-6
    whole = CoMoments.of(every["block3/main"][fit], z[fit])
    np.testing.assert_allclose(fits["block3/main"].xx, whole.xx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fits["block3/main"].xz, whole.xz, rtol=1e-9, atol=1e-12)
    assert helds["block1/skip"].n == int((~fit).sum())
    iv, _ = path_information(fits, helds, blocks, 1e-9)
    np.testing.assert_allclose(iv[0, 0, 0], 1.0, atol=1e-6)
    _, _, off = path_moments(
        model,
        blocks,
        iter([x]),
        lambda a, b: z[a:b],
        fit,
        "gap",
        torch.device("cpu"),
        lambda a, b: {"block2": every["block2/out"][a:b] * 1.1},
    )
    assert off > 0.05


def test_the_config_check_names_flow_problems() -> None:
    """Before any job: a followed experiment must be analyzed, residual, and the blocks its own."""
    base = {
        "datasets": {"p": {"kind": "planted", "n_train": 64, "n_test": 32}},
        "models": {
            "res": {"arch": "smallresnet", "dataset": "p", "width": 4},
            "cnn": {"arch": "smallcnn", "dataset": "p", "width": 4},
        },
        "experiments": {
            "r": {"model": "res", "dataset": "p", "layers": ["block1", "act"]},
            "c": {"model": "cnn", "dataset": "p", "layers": ["block1", "act"]},
        },
    }
    for flow, analyzed, message in (
        ({"experiments": ["r"]}, ["c"], "'r' is not in complexity.experiments"),
        ({"experiments": ["c"]}, ["c"], "model 'cnn' .* has no residual blocks"),
        ({"experiments": ["r"], "blocks": ["block4"]}, ["r"], r"\['block4'\] are not residual blocks"),
    ):
        with pytest.raises(ValueError, match=message):
            checked({**base, "complexity": {"experiments": analyzed, "flow": flow}}, check_paths=False)
    checked({**base, "complexity": {"experiments": ["r"], "flow": {"experiments": ["r"]}}}, check_paths=False)


@pytest.mark.parametrize("make, last", [(smallresnet, "block3"), (resnet18, "layer4.1")])
def test_a_zeroed_main_branch_leaves_the_skip(make, last) -> None:
    """With the main branch zeroed the block's output is relu(skip) exactly (torchvision adds the skip in place
    into the zeros); the hook is gone afterwards."""
    model = make()
    block = next(b for b in residual_blocks(model) if b.name == last)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad(), capture_paths(model, [block], "grid4") as out:
        with main_zeroed(model, block):
            model(x)
        ablated = dict(out)
        model(x)
    torch.testing.assert_close(ablated[f"{last}/out"], torch.relu(ablated[f"{last}/skip"]))
    assert not torch.equal(out[f"{last}/out"], ablated[f"{last}/out"])


def test_paired_columns_stream_to_the_correlation_of_all_rows() -> None:
    """Pearson's r per column from chunks equals numpy's on all rows; a constant ablated column keeps nothing
    (0), a constant stored column has no retention (NaN)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4)) + 3
    b = a + rng.normal(size=(200, 4)) * np.array([0.1, 1.0, 3.0, 0.0])
    b[:, 3], a[:, 2] = 0.0, 1.5
    pairs = PairedColumns(4)
    for rows in np.array_split(np.arange(200), 7):
        pairs.update(a[rows], b[rows])
    r = pairs.correlation()
    for j in range(2):
        np.testing.assert_allclose(r[j], np.corrcoef(a[:, j], b[:, j])[0, 1], rtol=1e-12)
    assert np.isnan(r[2]) and r[3] == 0.0


def _codes(model: Classifier, x: torch.Tensor, encode, ablate=None) -> np.ndarray:
    with torch.no_grad():
        if ablate is None:
            return encode(pool(forward_to(model, x, "block1"), "gap")).double().numpy()
        with main_zeroed(model, ablate):
            return encode(pool(forward_to(model, x, "block1"), "gap")).double().numpy()


def test_retention_is_one_for_what_the_skip_carries_and_zero_for_what_only_the_main_branch_does() -> None:
    """Known answer on a tiny residual net, dictionary on block1 (identity skip) with the channels as atoms:
    channel 0's main branch is zero, so ablating it keeps feature 0 exactly (retention 1); channel 1 of the stem
    (the skip) is zero, so feature 1 is read from the main branch only and is lost (retention 0). The streamed
    retention equals the correlation of the codes with and without the ablation, on all rows at once."""
    model = smallresnet()
    body = model.body
    with torch.no_grad():
        for bn, channel in ((body.block1.main[4], 0), (body.stem[1], 1)):  # the last BN of each path
            bn.weight[channel], bn.bias[channel] = 0.0, 0.0
    block1 = residual_blocks(model)[0]
    encode = NMFDictionary(torch.eye(4), 500, 1e-2, 1e-8).encode
    x = torch.rand(120, 3, 32, 32)
    stored = _codes(model, x, encode)
    retention = code_retention(
        model,
        [block1],
        (x[i : i + 50] for i in range(0, 120, 50)),
        lambda a, b: stored[a:b],
        "block1",
        "gap",
        encode,
        torch.device("cpu"),
    )
    np.testing.assert_allclose(retention[0, 0], 1.0, atol=1e-9)
    assert retention[0, 1] == 0.0
    ablated = _codes(model, x, encode, block1)
    expect = [np.corrcoef(stored[:, j], ablated[:, j])[0, 1] for j in (2, 3)]
    np.testing.assert_allclose(retention[0, 2:], expect, rtol=1e-6)


def test_rho_of_retention_is_negative_when_simple_features_are_kept() -> None:
    """A constructed case: retention falling with K at every block gives rho < 0 with a CI below 0 per block and
    for the mean over blocks; retention independent of K a CI around 0."""
    rng = np.random.default_rng(0)
    k = rng.random(100)
    falling = np.stack([1 - s * k + 0.05 * rng.normal(size=100) for s in (0.2, 0.5, 0.8)])
    rhos = retention_rhos(k, falling, seed=0)
    assert len(rhos) == 4 and all(r.rho < 0 and r.high < 0 for r in rhos)
    flat = retention_rhos(k, rng.random((2, 100)), seed=0)[-1]
    assert flat.low < 0 < flat.high
