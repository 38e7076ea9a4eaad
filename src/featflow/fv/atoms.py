"""Pictures of dictionary features (SPEC 1.7, Fel et al.'s Fig. 3): FV of an atom's direction at its layer.

An atom d_i of the complexity branch's NMF dictionary is a direction in the space of its layer's activations,
pooled the way the experiment pooled them (:func:`featflow.activations.pool`: a vector layer as is, a conv
layer by global average or grid pooling). Its picture maximizes the FV objective S_x(y) (SPEC 2.1) with
x = d_i / |d_i| and y = pool(f_l(P(v))), through the FV branch's own parametrizations P and optimizer
(:func:`featflow.fv.optimize.optimize_batch`): all selected atoms in one batch, each from a start drawn from
(seed, feature id) alone, so a feature's picture is the same whichever other features are drawn beside it.
With Adam only (``lbfgs_steps: 0``, the default) the batch is exactly the features one at a time; L-BFGS
shares its line search across the batch.

The branch reads the dictionary, K and the codes from the complexity branch's files (files are the contract
between branches): ``dictionary.h5`` (atoms, layer), ``vinfo.h5`` (K per feature), ``codes_{split}.h5`` and the
split's activations (top-activating images). Written (kind ``feature-pictures``): per picture the feature id,
its role (simplest, most complex, requested), K, the image, its response y, S_x(y), the gradient norm, and the
check that the picture drives the atom's direction: cos(y, d_i), beside the same cosine for uniform-noise images
(``baseline_cosine``) and for the feature's top-activating image (``top_cosine``); a picture not above the
noise images' cosine (``above_noise`` false) is warned about and flagged in the figure.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow import store
from featflow.activations import pool
from featflow.config import Spec
from featflow.data import load_split
from featflow.fv.objectives import objective, unit
from featflow.fv.optimize import optimize_batch
from featflow.fv.param import init_params
from featflow.models import forward_to, load_checkpoint
from featflow.repro import torch_generator

log = logging.getLogger(__name__)

KIND = "feature-pictures"
ROLES = ("simplest", "most complex", "requested")

Path_ = str | Path
ResponseFn = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class PicturesSpec(Spec):
    """The ``complexity.pictures`` config section (schema: complexity.schema.yaml): which features, and the FV
    settings (names as in the ``fv`` section)."""

    n_features: int = 4
    ids: tuple[int, ...] = ()
    top_images: int = 6
    parametrization: str = "rgb"
    decorrelate: bool = False
    k: int = 2
    lr: float = 0.05
    adam_steps: int = 100
    lbfgs_steps: int = 0


def select_features(complexity: np.ndarray, n_features: int, ids: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(feature ids, roles): the ``n_features`` simplest features (lowest K first), the ``n_features`` most
    complex (highest K first) and the requested ``ids``, each once, in that order; roles index :data:`ROLES`.
    Features without a K (NaN: a constant code) are never drawn, but may be requested."""
    k = len(complexity)
    bad = [int(i) for i in ids if not 0 <= int(i) < k]
    if bad:
        raise ValueError(f"config key 'complexity.pictures.ids': {bad} are not features; expected ids in 0..{k - 1}")
    order = np.argsort(np.where(np.isnan(complexity), np.inf, complexity), kind="stable")
    valid = order[: int(np.isfinite(complexity).sum())]
    chosen: dict[int, int] = {}
    for role, group in enumerate((valid[:n_features], valid[::-1][:n_features], np.asarray(ids, dtype=np.int64))):
        for feature in group:
            chosen.setdefault(int(feature), role)
    if not chosen:
        raise ValueError("complexity.pictures: no feature has a complexity K (all codes constant) and no ids requested")
    return np.fromiter(chosen, dtype=np.int64, count=len(chosen)), np.fromiter(chosen.values(), dtype=np.int64)


def response_fn(model: torch.nn.Module, layer: str, pool_mode: str) -> ResponseFn:
    """images (B, C, H, W) in [0, 1] -> the layer's response (B, d), pooled as the experiment's activations were.
    The model is put in eval mode (batch norm must not mix samples) and its weights frozen."""
    model.eval().requires_grad_(False)

    def fn(images: torch.Tensor) -> torch.Tensor:
        return pool(forward_to(model, images, layer), pool_mode)

    return fn


def _feature_generator(seed: int, feature: int) -> torch.Generator:
    """A generator of its own per (seed, feature id)."""
    return torch_generator(int(np.random.SeedSequence([seed, feature]).generate_state(1)[0]))


def atom_pictures(
    fn: ResponseFn,
    image_shape: tuple[int, int, int],
    atoms: torch.Tensor,
    features: Sequence[int],
    spec: PicturesSpec,
    seed: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """FV of the atoms' directions (n, d), one batch: maximize S_x(fn(P(v))) with x = atoms / |atoms|.

    ``features`` are the atoms' ids (each start is drawn from (seed, id)). Returns, on the CPU: ``images``
    (n, C, H, W), ``responses`` y (n, d), ``objective`` S_x(y) (n,), ``grad_norm`` (n,) at the end and
    ``cosine`` cos(y, x) (n,).
    """
    starts = []
    for feature in features:
        v0, render = init_params(
            spec.parametrization, image_shape, 1, _feature_generator(seed, int(feature)), spec.decorrelate
        )
        starts.append(v0)
    x = unit(atoms.float()).to(device)
    v = optimize_batch(
        fn, render, torch.cat(starts).to(device), x, spec.k, spec.adam_steps, spec.lbfgs_steps, spec.lr
    ).requires_grad_(True)
    images = render(v)
    y = fn(images)
    value = objective(x, y, spec.k)
    (grad,) = torch.autograd.grad(value.sum(), v)
    out = {
        "images": images.detach(),
        "responses": y.detach(),
        "objective": value.detach(),
        "grad_norm": grad.flatten(1).norm(dim=1),
        "cosine": (unit(y.detach()) * x).sum(1),
    }
    return {key: value.cpu() for key, value in out.items()}


def baseline_cosine(
    fn: ResponseFn, image_shape: tuple[int, int, int], atoms: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """cos(fn(u_i), d_i) for one uniform-noise image u_i per atom (n,): what a picture must beat."""
    noise = torch.rand((atoms.shape[0], *image_shape), generator=generator)
    with torch.no_grad():
        y = fn(noise.to(atoms.device))
    return (unit(y) * unit(atoms)).sum(1).cpu()


def run_pictures(
    spec: PicturesSpec,
    pool_mode: str,
    split: str,
    checkpoint: Path_,
    dict_path: Path_,
    vinfo_path: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    out: Path_,
    figure: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """Pictures of the simplest, most complex and requested features (kind ``feature-pictures``) and the figure
    of each beside its top-activating images of ``split``."""
    from featflow.plots.pictures import feature_pictures

    layer = str(store.read_attrs(dict_path, "complexity-dictionary")["layer"])
    atoms_all = store.read_h5(dict_path, "complexity-dictionary")["atoms"]
    complexity = store.read_h5(vinfo_path, "complexity-vinfo")["complexity"]
    features, roles = select_features(complexity, spec.n_features, spec.ids)
    atoms = torch.from_numpy(atoms_all[features]).float().to(device)
    if (atoms.norm(dim=1) == 0).any():
        dead = features[(atoms.norm(dim=1) == 0).cpu().numpy()].tolist()
        raise ValueError(f"config key 'complexity.pictures.ids': features {dead} have a zero atom (no direction)")

    model, ckpt = load_checkpoint(checkpoint, device)
    shape = tuple(int(s) for s in ckpt["input_shape"])
    if len(shape) != 3:
        raise ValueError(f"complexity.pictures: feature visualization needs an image model, input shape is {shape}")
    fn = response_fn(model, layer, pool_mode)
    pics = atom_pictures(fn, shape, atoms, features, spec, seed, device)
    base = baseline_cosine(fn, shape, atoms, torch_generator(seed + 1))

    top, top_codes = store.top_rows(codes_path, "complexity-codes", "codes", spec.top_images, features)
    top_rows, first_acts = store.read_rows(acts_path, "activations", ["indices", f"layers/{layer}"], top)
    top_cos = (unit(torch.from_numpy(first_acts[:, 0]).float()) * unit(atoms.cpu())).sum(1)
    top_images = load_split(data_path, split, rows=top_rows.reshape(-1)).x.numpy()
    top_images = top_images.reshape(*top_rows.shape, *top_images.shape[1:])

    arrays = {
        "feature": features,
        "role": roles,
        "complexity": complexity[features],
        **{key: value.numpy() for key, value in pics.items()},
        "baseline_cosine": base.numpy(),
        "top_cosine": top_cos.numpy(),
        "top_rows": top_rows,
        "top_codes": top_codes.astype(np.float32),
    }
    arrays["images"] = arrays["images"].astype(np.float32)
    # A picture whose response is no closer to d_i than noise images' is a failed visualization: flagged.
    arrays["above_noise"] = arrays["cosine"] > arrays["baseline_cosine"]
    failed = features[~arrays["above_noise"]].tolist()
    if failed:
        log.warning("pictures of features %s are no closer to their atoms than uniform-noise images", failed)
    cos, base_cos, top_cos_ = (float(np.median(arrays[key])) for key in ("cosine", "baseline_cosine", "top_cosine"))
    log.info(
        "%d pictures at %s (%s): median cos(y, d_i) %.4f (uniform noise %.4f, top-activating image %.4f); "
        "per feature %s",
        len(features),
        layer,
        pool_mode,
        cos,
        base_cos,
        top_cos_,
        dict(zip(features.tolist(), np.round(arrays["cosine"], 4).tolist(), strict=True)),
    )
    store.write_h5(
        out,
        KIND,
        arrays,
        {**attrs, "layer": layer, "pool": pool_mode, "split": split, "roles": list(ROLES), "image_shape": list(shape)},
    )

    def listed(role: int) -> str:
        rows = np.flatnonzero(roles == role)
        return ", ".join(f"#{features[r]} K={complexity[features[r]]:.3f} cos={arrays['cosine'][r]:.3f}" for r in rows)

    numbers = {
        "median cos(picture's response, d_i)": (
            f"{cos:.3f} (uniform-noise images: {base_cos:.3f}; top-activating images: {top_cos_:.3f})"
        ),
        "simplest features": listed(0),
        "most complex features": listed(1),
        "objective": (
            f"S_x(y), x = d_i / |d_i|, k = {spec.k} at layer {layer} ({pool_mode}); {spec.parametrization}, "
            f"{spec.adam_steps} Adam + {spec.lbfgs_steps} L-BFGS steps"
        ),
    }
    if (roles == 2).any():
        numbers["requested features"] = listed(2)
    numbers["pictures not above noise"] = ", ".join(f"#{f}" for f in failed) or "none"
    fig = feature_pictures(
        arrays["images"],
        top_images,
        features,
        arrays["complexity"],
        arrays["cosine"],
        [ROLES[r] for r in roles],
        arrays["above_noise"],
    )
    store.save_figure(fig, figure, numbers)
