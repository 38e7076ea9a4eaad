"""Feature flow through residual connections: the two paths into a block, and what each carries of a feature."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featflow.complexity.flow import block_gain, path_information, path_moments, skip_share
from featflow.config import ModelSpec
from featflow.metrics.cka import linear_cka
from featflow.metrics.moments import CoMoments
from featflow.models.registry import Classifier, build_model
from featflow.models.residual import capture_paths, residual_blocks, select_blocks
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
