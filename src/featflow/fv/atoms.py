"""Pictures of dictionary features (SPEC 1.7, Fel et al.'s Fig. 3): FV of a feature of the branch's dictionary.

A feature i of the complexity branch's dictionary, any method (:mod:`featflow.dictionary`: NMF, Semi-NMF, a sparse
autoencoder, one read from a file), has a decoder atom d_i in the space of its layer's activations, pooled the way
the experiment pooled them (:func:`featflow.activations.pool`), and a code z_i(y) from the dictionary's own encoder
(``encode``: the branch's codes). Its picture (``target: code``, the default) maximizes z_i + (z_i - max_{j != i}
z_j) of the response y = pool(f_l(P(v))) through the FV branch's parametrizations P and optimizer
(:func:`featflow.fv.optimize.optimize_batch`), the codes differentiable in y (:func:`code_response`: exactly on the
active set of a ridge-NNLS code, by autograd through a feed-forward encoder); ``target: atom`` maximizes the FV
objective along x = d_i / |d_i| instead (sign-preserving, :func:`atom_objective`), whose picture may code feature i
0 (issue 26.5). Each picture starts at the feature's top-activating image (``start: top``) or from noise drawn from
(seed, feature id); all features in one batch, each row's optimization its own (Adam; L-BFGS shares its line search
across the batch).

Signed atoms (Semi-NMF, SAEs) and signed layers: every registered method's codes are >= 0, so feature i is the
direction +d_i (never -d_i); the cosine ranks (``rank``, ``best_data_rank``) rank atoms by signed cosine
cos(y, d_j), the code rank and the flag compare signed codes, and the top image is the one of largest code; all of
this is what the non-negative case computed, and holds as stated for signed atoms and responses.

The branch reads the dictionary, K and the codes from the complexity branch's files (files are the contract
between branches): ``dictionary.h5`` (read through :func:`featflow.dictionary.files.read`, with its layer),
``vinfo.h5`` (K per feature), ``codes_{split}.h5`` and the split's activations (top-activating images, best cosine
ranks). Written (kind ``feature-pictures``): per picture the feature id, its role (simplest, most complex,
requested), K, the image, its response y, the objective, the gradient norm, its own code z_i (the encoder's)
beside the largest code of the split's images (``top_codes``), the rank of z_i among the picture's codes
(``code_rank``), the rank of d_i among all atoms by cosine to y (``rank``) beside the best such rank of any image
of the split (``best_data_rank``), cos(y, d_i) beside uniform noise's and the top image's, and ``flagged``: own
code below the top image's or not the largest (warned about, red in the figure). ``pictures_parametrizations.csv``
compares the same features through ``complexity.pictures.compare`` (rgb, fft and maco by default).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from featflow import store
from featflow.activations import pool
from featflow.config import Spec
from featflow.data import load_split
from featflow.dictionary import files
from featflow.dictionary.base import Dictionary
from featflow.dictionary.nmf import NMFDictionary
from featflow.dictionary.spec import DictionarySpec
from featflow.fv.objectives import objective, unit
from featflow.fv.optimize import optimize_batch
from featflow.fv.param import Spectrum, data_spectrum, init_params, params_of
from featflow.metrics.nnls import ridge_mu
from featflow.models import forward_to, load_checkpoint
from featflow.repro import torch_generator

log = logging.getLogger(__name__)

KIND = "feature-pictures"
ROLES = ("simplest", "most complex", "requested")
TARGETS = ("code", "atom")
STARTS = ("top", "noise")

Path_ = str | Path
ResponseFn = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class PicturesSpec(Spec):
    """The ``complexity.pictures`` config section (schema: complexity.schema.yaml): which features, and the FV
    settings (names as in the ``fv`` section)."""

    n_features: int = 4
    ids: tuple[int, ...] = ()
    top_images: int = 6
    target: str = "code"
    start: str = "top"
    parametrization: str = "rgb"
    decorrelate: bool = False
    k: int = 2
    lr: float = 0.05
    adam_steps: int = 100
    lbfgs_steps: int = 0
    compare: tuple[str, ...] = ("rgb", "fft", "maco")
    spectrum_images: int = 2000


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


@runtime_checkable
class Gated(Protocol):
    """A feed-forward (SAE) encoder whose codes are gated pre-activations: ReLU, JumpReLU, TopK, BatchTopK."""

    def gate(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activations (n, k), the threshold each must reach (broadcastable to (n, k))), differentiable in
        ``a``: ``encode(a)`` is pre_j where pre_j >= threshold_j, else 0."""
        ...


def code_response(dictionary: Dictionary, features: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """responses y (B, d) -> codes c (B, k) of the dictionary's encoder, differentiable in y; row b's own feature
    ``features[b]`` continued below 0 where it is inactive (its code is 0 there, with no gradient), so that the
    optimizer knows how far the feature is from turning on.

    A ridge-NNLS-coded dictionary (:class:`~featflow.dictionary.nmf.NMFDictionary`: NMF, Semi-NMF; atoms of any
    sign) is differentiated exactly on its active set (:func:`_nnls_response`). Any other dictionary is a
    feed-forward encoder (an SAE), differentiated by autograd through its :class:`Gated` ``gate``
    (:func:`_encoder_response`)."""
    if isinstance(dictionary, NMFDictionary):
        return _nnls_response(dictionary, features)
    if not isinstance(dictionary, Gated):
        raise TypeError(
            f"complexity.pictures: a {type(dictionary).__name__} dictionary has no gate(a); its pictures need the "
            "pre-activations and thresholds of its encoder (featflow.fv.atoms.Gated)"
        )
    return _encoder_response(dictionary, features)


def _nnls_response(dictionary: NMFDictionary, features: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ridge NNLS code is piecewise linear in y: on its active set S, z_S = (D_S D_S^T + mu I)^-1 D_S y exactly,
    and z is the unique optimum when z_S >= 0 and every inactive margin d_j^T y - (G z)_j <= 0 (KKT,
    G = D D^T + mu I; none of this needs D >= 0, so Semi-NMF's signed atoms are coded the same way). Each row
    keeps its active set from the previous call while it passes that check (an optimizer's step rarely changes
    it); a row that fails takes the active set of the dictionary's own encoder (``encode``). Row b's own feature
    i, where inactive, is given its margin (d_i^T y - (G z)_i) / G_ii <= 0 instead: continuous at 0."""
    atoms = dictionary.atoms
    gram = atoms @ atoms.T
    reg = gram + ridge_mu(gram, dictionary.ridge) * torch.eye(len(atoms), device=atoms.device, dtype=atoms.dtype)
    own = torch.nn.functional.one_hot(features.to(atoms.device), len(atoms)).to(atoms)
    kept: list[torch.Tensor] = []

    def solve(active: torch.Tensor, cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        system = active[:, :, None] * reg * active[:, None, :] + torch.diag_embed(1 - active)
        z = torch.linalg.solve(system, active * cross)
        return z, cross - z @ reg

    def active_set(y: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
        active = kept[0] if kept and kept[0].shape == cross.shape else torch.zeros_like(cross)
        z, margin = solve(active, cross)
        slack = 1e-6 * cross.abs().amax(1, keepdim=True)
        fails = ((z < 0) | ((active == 0) & (margin > slack))).any(1)
        if fails.any():
            active[fails] = (dictionary.encode(y[fails]) > 0).to(active)
        kept[:] = [active]
        return active

    def fn(y: torch.Tensor) -> torch.Tensor:
        cross = y @ atoms.T
        with torch.no_grad():
            active = active_set(y.detach(), cross.detach())
        z, margin = solve(active, cross)
        return z + own * (1 - active) * margin / reg.diagonal()

    return fn


def _encoder_response(dictionary: Gated, features: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """An SAE's code from its gate, pre_j where pre_j >= threshold_j else 0 (its ``encode``), with autograd (exact:
    the code is piecewise linear in y). The choice of continuation: row b's own feature i, where inactive, is
    pre_i(y) - threshold_i(y) < 0, the pre-activation minus the threshold it must reach (0 for ReLU, JumpReLU's
    theta_i, BatchTopK's learned threshold, for TopK the row's ``active``-th largest pre-activation, at least 0:
    the one i must overtake). It rises to 0 as the feature turns on; a ReLU code is continuous there, a TopK or
    JumpReLU code jumps from 0 to its threshold, as the encoder does."""
    k = dictionary.atoms.shape[0]
    own = torch.nn.functional.one_hot(features.to(dictionary.atoms.device), k).to(dictionary.atoms)

    def fn(y: torch.Tensor) -> torch.Tensor:
        pre, threshold = dictionary.gate(y)
        on = (pre >= threshold).to(pre).detach()
        return on * pre + own * (1 - on) * (pre - threshold)

    return fn


def atom_pictures(
    fn: ResponseFn,
    image_shape: tuple[int, int, int],
    dictionary: Dictionary,
    features: Sequence[int],
    spec: PicturesSpec,
    *,
    seed: int,
    device: torch.device,
    spectrum: Spectrum | None = None,
    start_images: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Pictures of the dictionary's atoms ``features``, one batch, each started at its ``start_images`` row
    (n, C, H, W) or, without them, from noise drawn from (seed, id).

    ``target: code`` maximizes :func:`code_objective` on the feature's code through the dictionary's encoder
    (:func:`code_response`): z_i large and the largest of the picture's codes; ``target: atom`` maximizes
    :func:`atom_objective` (S_x(y), sign kept) with x = d_i / |d_i| on the response itself (the picture's response
    may then be nearer another atom, and z_i 0); ``spec.k`` is the exponent of S_x there. Returns, on the CPU:
    ``images`` (n, C, H, W), ``responses`` y (n, d), ``objective`` (n,), ``grad_norm`` (n,) at the end,
    ``cosine`` cos(y, d_i) (n,), ``code`` z_i(y) from the dictionary's encoder (n,), ``code_rank`` of z_i among
    the picture's codes (n,; 1 = largest) and ``rank`` of d_i among all atoms by signed cosine to y (n,; 1 =
    nearest; -d_i is not feature i: the codes are >= 0).
    """
    if spec.target not in TARGETS:
        raise ValueError(f"config key 'complexity.pictures.target': '{spec.target}', expected one of {TARGETS}")
    if spec.start not in STARTS:
        raise ValueError(f"config key 'complexity.pictures.start': '{spec.start}', expected one of {STARTS}")
    ids = torch.as_tensor(np.asarray(features, dtype=np.int64))
    starts = []
    for feature in features:
        v0, render = init_params(
            spec.parametrization,
            image_shape,
            1,
            _feature_generator(seed, int(feature)),
            spec.decorrelate,
            spectrum=spectrum,
        )
        starts.append(v0)
    if start_images is not None:
        starts = [params_of(spec.parametrization, start_images, spec.decorrelate, spectrum)]
    atoms = dictionary.atoms.to(device)
    # the objective itself as a one-value response, maximized as S_1(.) with k = 0
    if spec.target == "code":
        codes_of = code_response(dictionary, ids)
        rows = torch.arange(len(ids), device=device)

        def target(images: torch.Tensor) -> torch.Tensor:
            return code_objective(codes_of(fn(images)), rows, ids.to(device))[:, None]

    else:
        directions = unit(atoms[ids.to(device)])

        def target(images: torch.Tensor) -> torch.Tensor:
            return atom_objective(directions, fn(images), spec.k)[:, None]

    x = torch.ones((len(ids), 1), device=device)
    v = optimize_batch(
        target,
        render,
        torch.cat(starts).to(device),
        x,
        0,
        adam_steps=spec.adam_steps,
        lbfgs_steps=spec.lbfgs_steps,
        lr=spec.lr,
    ).requires_grad_(True)
    images = render(v)
    value = objective(x, target(images), 0)
    (grad,) = torch.autograd.grad(value.sum(), v)
    with torch.no_grad():
        y = fn(images)
        codes = dictionary.encode(y)
        cos = unit(y) @ unit(atoms).T
    rows = torch.arange(len(ids))
    own, own_code = cos[rows, ids], codes[rows, ids]
    out = {
        "images": images.detach(),
        "responses": y,
        "objective": value.detach(),
        "grad_norm": grad.flatten(1).norm(dim=1),
        "cosine": own,
        "code": own_code,
        "code_rank": 1 + (codes > own_code[:, None]).sum(1),
        "rank": 1 + (cos > own[:, None]).sum(1),
    }
    return {key: value.cpu() for key, value in out.items()}


def atom_objective(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """S_x(y) with its sign kept, (x^T y) |x^T y / ||y|||^k per row: equal to the FV branch's S_x
    (:func:`featflow.fv.objectives.objective`) where x^T y >= 0, always the case for non-negative atoms and
    responses. A signed atom or layer can give x^T y < 0, where S_x with an odd k, (x^T y)^(k+1) / ||y||^k, would
    be maximized by driving y towards -d_i (not feature i); this one is increasing in x^T y at any sign."""
    dot = (x * y).sum(dim=1)
    return dot * (dot / y.norm(dim=1).clamp_min(1e-12)).abs() ** k


def code_objective(codes: torch.Tensor, rows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """S = z_i + (z_i - max_{j != i} z_j) per row, z_i = codes[row, feature] (c from :func:`code_response`, below
    0 where the feature is off): the feature's code and its lead over the runner-up, so that the picture both
    drives the feature and makes it the largest code."""
    own = codes[rows, features]
    others = codes.index_put((rows, features), torch.full_like(own, -torch.inf))
    return 2 * own - others.amax(dim=1)


def baseline_cosine(
    fn: ResponseFn, image_shape: tuple[int, int, int], atoms: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """cos(fn(u_i), d_i) for one uniform-noise image u_i per atom (n,): what a picture must beat."""
    noise = torch.rand((atoms.shape[0], *image_shape), generator=generator)
    with torch.no_grad():
        y = fn(noise.to(atoms.device))
    return (unit(y) * unit(atoms)).sum(1).cpu()


def flagged(code: np.ndarray, top_code: np.ndarray, code_rank: np.ndarray) -> np.ndarray:
    """A picture that does not show its feature: its own code below the feature's largest code over the data (the
    top image beats it), or another feature's code the largest of the picture's (code_rank > 1). Codes are >= 0
    for every method (NNLS, ReLU / TopK / JumpReLU SAEs), signed atoms or not, so the largest code is the most
    active feature; a dictionary with signed codes would be compared by signed value (the +d_i side)."""
    return (code < top_code) | (code_rank > 1)


def best_data_rank(acts_path: Path_, layer: str, atoms: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Per feature the best (lowest) rank of d_i among all atoms by cosine to the response of any image of the
    split (one pass in chunks): what a picture's cosine rank can be held to. Signed cosine, as the pictures' ranks:
    with signed atoms (Semi-NMF, SAEs) or a signed layer a response near -d_j ranks d_j last, not first."""
    unit_atoms = atoms / np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1e-12)
    best = np.full(len(features), len(atoms), dtype=np.int64)
    for _, (chunk,) in store.iter_rows([(acts_path, "activations", f"layers/{layer}")]):
        cos = chunk @ unit_atoms.T  # the response's norm does not change ranks
        best = np.minimum(best, 1 + (cos[:, None, :] > cos[:, features][:, :, None]).sum(2).min(0))
    return best


def compare_parametrizations(
    fn: ResponseFn,
    shape: tuple[int, int, int],
    dictionary: Dictionary,
    features: np.ndarray,
    spec: PicturesSpec,
    *,
    top_code: np.ndarray,
    seed: int,
    device: torch.device,
    spectrum: Spectrum | None,
    start_images: torch.Tensor | None,
    done: dict[str, dict[str, torch.Tensor]],
) -> pd.DataFrame:
    """One row per (parametrization in ``spec.compare``, feature): the pictures of the same atoms with the same
    target, start and steps, and whether each shows its feature (code over the top image's, code rank, cosine
    rank, flag). ``done``: pictures already made, by parametrization (not made again)."""
    rows = []
    for kind in spec.compare:
        other = dataclasses.replace(spec, parametrization=kind, decorrelate=spec.decorrelate and kind != "maco")
        pics = done.get(kind) or atom_pictures(
            fn,
            shape,
            dictionary,
            features,
            other,
            seed=seed,
            device=device,
            spectrum=spectrum,
            start_images=start_images,
        )
        code, code_rank = pics["code"].numpy(), pics["code_rank"].numpy()
        rows.append(
            pd.DataFrame(
                {
                    "parametrization": kind,
                    "feature": features,
                    "code": code,
                    "top_code": top_code,
                    "code_ratio": code / np.maximum(top_code, 1e-12),
                    "code_rank": code_rank,
                    "rank": pics["rank"].numpy(),
                    "cosine": pics["cosine"].numpy(),
                    "flagged": flagged(code, top_code, code_rank),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _compare_numbers(table: pd.DataFrame) -> dict[str, str]:
    """Per parametrization: flagged pictures, median code / top image's code, median code rank and cosine rank."""
    groups = table.groupby("parametrization", sort=False)
    return {
        f"{kind}: flagged, median z_i / max z_i, median code rank, median cosine rank": (
            f"{int(g['flagged'].sum())}/{len(g)}, {g['code_ratio'].median():.2f}, {g['code_rank'].median():g}, "
            f"{g['rank'].median():g}"
        )
        for kind, g in groups
    }


def run_pictures(
    spec: PicturesSpec,
    dictionary_spec: DictionarySpec,
    *,
    pool_mode: str,
    split: str,
    checkpoint: Path_,
    dict_path: Path_,
    vinfo_path: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    out: Path_,
    table: Path_,
    figure: Path_,
    device: torch.device,
    seed: int,
    attrs: dict[str, Any],
) -> None:
    """Pictures of the simplest, most complex and requested features (kind ``feature-pictures``), the figure
    of each beside its top-activating images of ``split``, and the table comparing parametrizations (CSV).
    ``dictionary_spec``: the whole ``complexity.dictionary`` section, which rebuilds the stored dictionary of any
    method with the encoder its codes came from (:func:`featflow.dictionary.files.read`)."""
    from featflow.plots.pictures import feature_pictures

    layer = str(store.read_attrs(dict_path, files.KIND)["layer"])
    dictionary = files.read(dict_path, dictionary_spec, device)
    atoms_all = dictionary.atoms.cpu().numpy()
    complexity = store.read_h5(vinfo_path, "complexity-vinfo")["complexity"]
    features, roles = select_features(complexity, spec.n_features, spec.ids)
    dead = features[np.linalg.norm(atoms_all[features], axis=1) == 0].tolist()
    if dead:
        raise ValueError(f"config key 'complexity.pictures.ids': features {dead} have a zero atom (no direction)")
    atoms = dictionary.atoms[torch.from_numpy(features).to(device)]

    model, ckpt = load_checkpoint(checkpoint, device)
    shape = tuple(int(s) for s in ckpt["input_shape"])
    if len(shape) != 3:
        raise ValueError(f"complexity.pictures: feature visualization needs an image model, input shape is {shape}")
    top, top_codes = store.top_rows(codes_path, "complexity-codes", "codes", spec.top_images, features)
    top_rows, first_acts = store.read_rows(acts_path, "activations", ["indices", f"layers/{layer}"], top)
    top_cos = (unit(torch.from_numpy(first_acts[:, 0]).float()) * unit(atoms.cpu())).sum(1)
    top_images = load_split(data_path, split, rows=top_rows.reshape(-1)).x.numpy()
    top_images = top_images.reshape(*top_rows.shape, *top_images.shape[1:])
    starts = torch.from_numpy(top_images[:, 0]).to(device) if spec.start == "top" else None

    spectrum = None
    if "maco" in (spec.parametrization, *spec.compare):
        spectrum = data_spectrum(load_split(data_path, "train", rows=slice(0, spec.spectrum_images)).x)
    fn = response_fn(model, layer, pool_mode)
    pics = atom_pictures(
        fn, shape, dictionary, features, spec, seed=seed, device=device, spectrum=spectrum, start_images=starts
    )
    base = baseline_cosine(fn, shape, atoms, torch_generator(seed + 1))

    arrays = {
        "feature": features,
        "role": roles,
        "complexity": complexity[features],
        **{key: value.numpy() for key, value in pics.items()},
        "baseline_cosine": base.numpy(),
        "top_cosine": top_cos.numpy(),
        "best_data_rank": best_data_rank(acts_path, layer, atoms_all, features),
        "top_rows": top_rows,
        "top_codes": top_codes.astype(np.float32),
    }
    arrays["images"] = arrays["images"].astype(np.float32)
    arrays["above_noise"] = arrays["cosine"] > arrays["baseline_cosine"]
    arrays["flagged"] = flagged(arrays["code"], arrays["top_codes"][:, 0], arrays["code_rank"])
    failed = features[arrays["flagged"]].tolist()
    if failed:
        log.warning(
            "pictures of features %s do not show their feature: code below the top image's or not the largest code",
            failed,
        )
    compared = compare_parametrizations(
        fn,
        shape,
        dictionary,
        features,
        spec,
        top_code=arrays["top_codes"][:, 0],
        seed=seed,
        device=device,
        spectrum=spectrum,
        start_images=starts,
        done={spec.parametrization: pics},
    )
    cos, base_cos, top_cos_ = (float(np.median(arrays[key])) for key in ("cosine", "baseline_cosine", "top_cosine"))
    ratio = arrays["code"] / np.maximum(arrays["top_codes"][:, 0], 1e-12)
    log.info(
        "%d pictures at %s, target %s: %d flagged; per feature (z_i / max z_i, code rank, cosine rank, best "
        "cosine rank of any image) %s",
        len(features),
        f"{layer} ({pool_mode})",
        f"{spec.target} from {spec.start}",
        len(failed),
        dict(
            zip(
                features.tolist(),
                zip(
                    np.round(ratio, 3).tolist(),
                    arrays["code_rank"].tolist(),
                    arrays["rank"].tolist(),
                    arrays["best_data_rank"].tolist(),
                    strict=True,
                ),
                strict=True,
            )
        ),
    )
    meta = {**attrs, "layer": layer, "pool": pool_mode, "split": split, "target": spec.target, "start": spec.start}
    store.write_h5(out, KIND, arrays, {**meta, "roles": list(ROLES), "image_shape": list(shape)})
    store.write_table(compared, table)

    def listed(role: int) -> str:
        rows = np.flatnonzero(roles == role)
        return ", ".join(
            f"#{features[r]} K={complexity[features[r]]:.3f} z/max={ratio[r]:.2f} code rank {arrays['code_rank'][r]}"
            for r in rows
        )

    k = len(atoms_all)
    numbers = {
        "pictures flagged (own code below the top image's, or not the largest code)": (
            f"{len(failed)}/{len(features)}" + (f": {', '.join(f'#{f}' for f in failed)}" if failed else "")
        ),
        "median z_i(picture) / max z_i over the data": f"{float(np.median(ratio)):.2f}",
        "median rank of z_i among the picture's codes": f"{float(np.median(arrays['code_rank'])):g} of {k}",
        "median rank of d_i by cosine (best over the split's images)": (
            f"{float(np.median(arrays['rank'])):g} ({float(np.median(arrays['best_data_rank'])):g}) of {k}"
        ),
        "median cos(picture's response, d_i)": (
            f"{cos:.3f} (uniform-noise images: {base_cos:.3f}; top-activating images: {top_cos_:.3f})"
        ),
        "simplest features": listed(0),
        "most complex features": listed(1),
        "objective": (
            f"target {spec.target}: "
            + ("2 z_i - max_(j != i) z_j on the codes" if spec.target == "code" else f"S_x(y), x = d_i, k = {spec.k}")
            + f" at layer {layer} ({pool_mode}); {spec.parametrization} from {spec.start}, "
            f"{spec.adam_steps} Adam + {spec.lbfgs_steps} L-BFGS steps"
        ),
        **_compare_numbers(compared),
    }
    if (roles == 2).any():
        numbers["requested features"] = listed(2)
    numbers["pictures not above noise"] = ", ".join(f"#{f}" for f in features[~arrays["above_noise"]]) or "none"
    fig = feature_pictures(
        arrays["images"],
        top_images,
        features,
        complexity=arrays["complexity"],
        code_ratio=ratio,
        code_rank=arrays["code_rank"],
        roles=[ROLES[r] for r in roles],
        flagged=arrays["flagged"],
    )
    store.save_figure(fig, figure, numbers)
