"""A dictionary trained elsewhere, read from a local file (method ``file``, key ``complexity.dictionary.file.path``).

The dictionary is not refit: the file's atoms (and, for a sparse autoencoder, its encoder) are used as they are,
and the file's ``k`` counts (``complexity.dictionary.k`` is ignored). Formats, by suffix: ``.safetensors``,
``.npz`` and ``.pt`` / ``.pth`` (``torch.load(weights_only=True)``: a dict of tensors or a module's
``state_dict``; nested dicts are read with dotted names). Recognized keys (exact names, at the root or all under
one prefix such as ``state_dict.`` or ``module.``; k atoms of width d):

=====================  ======================================================  ===========
role                   keys                                                    shape
=====================  ======================================================  ===========
decoder atoms          ``atoms``, ``D``; ``W_dec`` (SAELens, saev, ViT-Prisma)  (k, d)
decoder atoms          ``decoder.weight`` (a torch ``Linear(k, d)``)            (d, k)
encoder                ``W_enc`` (SAELens, saev, ViT-Prisma)                    (d, k)
encoder                ``encoder.weight`` (a torch ``Linear(d, k)``)            (k, d)
encoder bias           ``b_enc``, ``encoder.bias``                              (k,)
decoder bias           ``b_dec``, ``decoder.bias``                              (d,)
JumpReLU threshold     ``threshold``                                            (k,)
top-k (TopK SAE)       ``k``, ``active``                                        scalar
input centering        ``apply_b_dec_to_input`` (0 or 1)                        scalar
=====================  ======================================================  ===========

A file with an encoder is a sparse autoencoder and encodes with its own formula, SAELens's:
``pre = (a - c b_dec) W_enc + b_enc`` (``c`` = ``apply_b_dec_to_input``; without it 1 with ``W_enc``, as
SAELens's default, and 0 with ``encoder.weight``, a module's ``relu(encoder(a))``), ``z = ReLU(pre)``, times
``(pre > threshold)`` for a JumpReLU SAE (SAELens's inference form), or the ``k`` largest of ``ReLU(pre)`` per
sample for a TopK SAE (Gao et al. 2024); ``decode(z) = z D + b_dec``. Missing biases are zero. SAELens stores
``apply_b_dec_to_input`` and a TopK SAE's ``k`` in ``cfg.json`` beside ``sae_weights.safetensors``: when a
``cfg.json`` with SAELens's ``d_sae`` sits beside the file it is read for those two (a key in the file itself wins;
SAELens's run-time input normalization and gated SAEs are not supported and are refused). saev's checkpoints
(a JSON header line, then a torch state dict) are not read directly, and saev's encoder no longer subtracts
``b_dec`` since July 2025: save its ``state_dict()`` with ``apply_b_dec_to_input`` 0. overcomplete's SAEs have
arbitrary encoder modules and a normalized dictionary: save ``model.get_dictionary()`` as ``atoms``.

A file with decoder atoms only (no encoder) is coded like an NMF dictionary: ridge-NNLS codes with the
``code_*`` keys (:func:`featflow.dictionary.nmf.coder`), its atoms scaled to unit rows first, as the NNLS-coded
methods' atoms are: the ridge then weighs every atom alike, and a code is in units of a unit atom (the code of
the file's atom times that atom's norm; without the ridge the reconstructions are the same).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featflow.dictionary.base import Dictionary, FitContext, Method, Rows
from featflow.dictionary.nmf import coder
from featflow.dictionary.spec import DictionarySpec

log = logging.getLogger(__name__)

KEY = "complexity.dictionary.file.path"
SUFFIXES = (".safetensors", ".npz", ".pt", ".pth")
# role -> accepted names, each with whether the stored matrix is the transpose of the canonical one
ROLES: dict[str, tuple[tuple[str, bool], ...]] = {
    "atoms": (("atoms", False), ("D", False), ("W_dec", False), ("decoder.weight", True)),
    "W_enc": (("W_enc", False), ("encoder.weight", True)),
    "b_enc": (("b_enc", False), ("encoder.bias", False)),
    "b_dec": (("b_dec", False), ("decoder.bias", False)),
    "threshold": (("threshold", False),),
    "active": (("k", False), ("active", False)),
    "center": (("apply_b_dec_to_input", False),),
}
_EPS = 1e-12


@dataclass
class SAEDictionary:
    """A sparse autoencoder read from a file: decoder atoms ``D`` (k, d), encoder ``W_enc`` (d, k), biases, and
    a JumpReLU ``threshold`` (k,) or a top-k ``active`` count (see the module docstring for the formula)."""

    atoms: torch.Tensor
    encoder: torch.Tensor
    b_enc: torch.Tensor
    b_dec: torch.Tensor
    threshold: torch.Tensor | None = None
    active: int | None = None
    center: bool = True

    @property
    def signed_atoms(self) -> bool:
        return bool((self.atoms < 0).any())

    @property
    def signed_codes(self) -> bool:
        return False  # ReLU, JumpReLU (ReLU times a mask) and TopK of ReLU: codes >= 0

    def pre_activations(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, k) ``(a - c b_dec) W_enc + b_enc``."""
        a = a.to(self.atoms)
        return (a - self.b_dec if self.center else a) @ self.encoder + self.b_enc

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) activations -> (n, k) codes >= 0 by the file's encoder (differentiable in ``a``)."""
        pre = self.pre_activations(a)
        z = self._jump(pre)
        if self.active is not None:
            values, index = z.topk(self.active, dim=1)
            z = torch.zeros_like(z).scatter_(1, index, values)
        return z

    def gate(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activations, the threshold each must reach), differentiable in ``a``: ``encode`` is pre where pre
        >= threshold (ties aside), else 0. The threshold is 0 (ReLU), the JumpReLU threshold, and for a TopK SAE
        at least the row's ``active``-th largest ReLU'd code. The pictures of features differentiate the codes
        through it and continue an inactive feature below 0 by pre - threshold (:class:`featflow.fv.atoms.Gated`)."""
        pre = self.pre_activations(a)
        threshold = pre.new_zeros(()) if self.threshold is None else self.threshold.clamp_min(0)
        if self.active is not None:
            threshold = torch.maximum(threshold, self._jump(pre).topk(self.active, dim=1).values[:, -1:])
        return pre, threshold

    def _jump(self, pre: torch.Tensor) -> torch.Tensor:
        """ReLU, times ``pre > threshold`` for a JumpReLU SAE."""
        z = torch.relu(pre)
        return z if self.threshold is None else z * (pre > self.threshold)

    def encode_report(self, a: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.encode(a), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, k) codes -> (n, d) reconstructions ``z D + b_dec``."""
        return z.to(self.atoms) @ self.atoms + self.b_dec

    def state(self) -> dict[str, np.ndarray]:
        arrays = {
            "atoms": self.atoms,
            "W_enc": self.encoder,
            "b_enc": self.b_enc,
            "b_dec": self.b_dec,
            "center": torch.tensor(float(self.center)),
        }
        if self.threshold is not None:
            arrays["threshold"] = self.threshold
        if self.active is not None:
            arrays["active"] = torch.tensor(self.active)
        return {name: value.cpu().numpy() for name, value in arrays.items()}

    def to(self, device: torch.device | str) -> SAEDictionary:
        moved = {
            field.name: getattr(self, field.name).to(device)
            for field in dataclasses.fields(self)
            if isinstance(getattr(self, field.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)


def check_path(spec: DictionarySpec) -> Path:
    """The configured file, checked: set, existing, of a known format."""
    if spec.file.path is None:
        formats = " / ".join(SUFFIXES)
        raise ValueError(f"{KEY} is null but complexity.dictionary.method is 'file': set it to a {formats} file")
    path = Path(spec.file.path)
    if not path.is_file():
        raise FileNotFoundError(f"{KEY} '{path}': no such file (relative to the working directory {os.getcwd()})")
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{KEY} '{path}': unknown format '{path.suffix}'; expected one of {', '.join(SUFFIXES)}")
    return path


def describe(path: str | os.PathLike) -> tuple[int, int, str]:
    """``(k, d, kind)`` of a dictionary file from its shapes alone (kind ``sae`` with an encoder, ``decoder``
    without); .safetensors and .npz read only their headers, .pt memory-maps its tensors."""
    path = Path(path)
    shapes = _under_prefix(_shapes(path))
    roles = _roles(shapes, path)
    k, d = _canonical(shapes[roles["atoms"][0]], roles["atoms"][1])
    return k, d, "sae" if "W_enc" in roles else "decoder"


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    if suffix == ".npz":
        return _npz_shapes(path)
    return {name: tuple(np.shape(value)) for name, value in _torch_items(path, mmap=True).items()}


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes from each member's .npy header, without reading the arrays."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shapes[member.removesuffix(".npy")] = tuple(read(handle)[0])
    return shapes


def _torch_items(path: Path, mmap: bool = False) -> dict[str, Any]:
    """A .pt / .pth file's tensors and scalars by dotted name (a state dict, or nested dicts of them)."""
    with open(path, "rb") as handle:
        if handle.read(1) == b"{":
            raise ValueError(
                f"{KEY} '{path}': a JSON header before the tensors (a saev checkpoint?); load it with saev and save "
                "its state_dict() with torch.save or safetensors (with apply_b_dec_to_input 0 for saev's current "
                "encoder)"
            )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict):
        raise ValueError(f"{KEY} '{path}': holds a {type(loaded).__name__}; expected a dict of tensors (a state_dict)")
    return _flatten(loaded)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    items: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            items.update(_flatten(value, f"{prefix}{name}."))
        elif isinstance(value, torch.Tensor | int | float | bool | np.ndarray):
            items[f"{prefix}{name}"] = value
    return items


def _under_prefix(items: dict[str, Any]) -> dict[str, Any]:
    """The items as named under the one prefix that holds the decoder atoms when none is at the root (a
    checkpoint's ``state_dict.``, DataParallel's ``module.``, a parent module's ``sae.``); else all of them."""
    accepted = [name for name, _ in ROLES["atoms"]]
    if any(name in items for name in accepted):
        return items
    prefixes = {name[: -len(atom)] for name in items for atom in accepted if name.endswith(f".{atom}")}
    if len(prefixes) != 1:
        return items
    (prefix,) = prefixes
    return {name.removeprefix(prefix): value for name, value in items.items() if name.startswith(prefix)}


def _canonical(shape: tuple[int, ...], transposed: bool) -> tuple[int, ...]:
    return tuple(reversed(shape)) if transposed else shape


def _roles(shapes: dict[str, tuple[int, ...]], path: Path) -> dict[str, tuple[str, bool]]:
    """role -> (key in the file, transposed), with every shape checked against the decoder's (k, d)."""
    roles: dict[str, tuple[str, bool]] = {}
    for role, names in ROLES.items():
        found = [(name, transposed) for name, transposed in names if name in shapes]
        if len(found) > 1:
            raise ValueError(f"{KEY} '{path}': keys {[n for n, _ in found]} all give the {role}; keep one")
        if found:
            roles[role] = found[0]
    if "atoms" not in roles:
        accepted = [name for name, _ in ROLES["atoms"]]
        raise ValueError(
            f"{KEY} '{path}': no decoder atoms; the file holds {sorted(shapes)}, expected one of {accepted} "
            "(see featflow.dictionary.loaded for every accepted name)"
        )
    name, transposed = roles["atoms"]
    if len(shapes[name]) != 2:
        raise ValueError(f"{KEY} '{path}': {name} has shape {shapes[name]}; expected a matrix")
    k, d = _canonical(shapes[name], transposed)
    expected = {"W_enc": (d, k), "b_enc": (k,), "b_dec": (d,), "threshold": (k,), "active": (), "center": ()}
    for role, want in expected.items():
        if role in roles:
            key, flip = roles[role]
            got = _canonical(shapes[key], flip)
            if tuple(got) not in (want, (1,) if want == () else want):
                raise ValueError(
                    f"{KEY} '{path}': {key} has shape {shapes[key]}, inconsistent with the decoder {name} "
                    f"{shapes[name]} (k={k}, d={d}): expected {_canonical(want, flip)}"
                )
    stray = [role for role in ("b_enc", "b_dec", "threshold", "active") if role in roles and "W_enc" not in roles]
    if stray:
        raise ValueError(
            f"{KEY} '{path}': {[roles[r][0] for r in stray]} without an encoder; add the encoder (W_enc) or drop "
            "them (a decoder-only file is coded by NNLS)"
        )
    if "threshold" in roles and "active" in roles:
        raise ValueError(f"{KEY} '{path}': both a JumpReLU threshold and a top-k {roles['active'][0]}; keep one")
    return roles


def read(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The file's dictionary in canonical names and layout (``atoms`` (k, d), ``W_enc`` (d, k), ``b_enc``,
    ``b_dec``, ``threshold``, ``active``, ``center``), float32 except the scalars, checked."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        items: dict[str, Any] = load_file(str(path))
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            items = {name: npz[name] for name in npz.files}
    else:
        items = _torch_items(path)
    raw = {name: _numpy(value) for name, value in _under_prefix(items).items()}
    roles = _roles({name: value.shape for name, value in raw.items()}, path)
    arrays = {role: raw[key].T if flip else raw[key] for role, (key, flip) in roles.items()}
    if "W_enc" in arrays:
        for role, value in _sibling_config(path).items():
            arrays.setdefault(role, value)
        arrays.setdefault("center", np.asarray(0.0 if roles["W_enc"][1] else 1.0))
    for role in ("active", "center"):
        if role in arrays:
            arrays[role] = arrays[role].reshape(())
    _check_values(arrays, path)
    return {role: np.array(value, dtype=np.float32, order="C") for role, value in arrays.items()}


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy() if value.is_floating_point() else value.cpu().numpy()
    return np.asarray(value)


def _sibling_config(path: Path) -> dict[str, np.ndarray]:
    """``apply_b_dec_to_input`` and a TopK ``k`` from a SAELens ``cfg.json`` beside the file (none without one)."""
    config = path.with_name("cfg.json")
    if not config.is_file():
        return {}
    cfg = json.loads(config.read_text())
    if "d_sae" not in cfg:
        return {}
    where = f"{KEY} '{path}' (SAELens {config})"
    if cfg.get("normalize_activations") not in (None, "none"):
        raise ValueError(f"{where}: normalize_activations '{cfg['normalize_activations']}' is not supported")
    architecture = cfg.get("architecture", "standard")
    if architecture not in ("standard", "jumprelu", "topk"):
        raise ValueError(f"{where}: architecture '{architecture}'; supported: standard, jumprelu, topk")
    found = {"center": np.asarray(float(cfg.get("apply_b_dec_to_input", True)))}
    k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
    if architecture == "topk" or cfg.get("activation_fn") == "topk":
        if k is None:
            raise ValueError(f"{where}: a TopK SAE without k; add a scalar k to the weights file")
        found["active"] = np.asarray(k)
    return found


def _check_values(arrays: dict[str, np.ndarray], path: Path) -> None:
    k = arrays["atoms"].shape[0]
    if "active" in arrays:
        active = float(arrays["active"])
        if active != int(active) or not 1 <= active <= k:
            raise ValueError(f"{KEY} '{path}': top-k {active:g}; expected an integer in [1, k={k}]")
    if "center" in arrays and float(arrays["center"]) not in (0.0, 1.0):
        raise ValueError(f"{KEY} '{path}': apply_b_dec_to_input {float(arrays['center']):g}; expected 0 or 1")
    bad = [role for role, value in arrays.items() if not np.isfinite(value).all()]
    if bad:
        raise ValueError(f"{KEY} '{path}': non-finite values in {bad}")


def build(arrays: dict[str, np.ndarray], spec: DictionarySpec, device: torch.device) -> Dictionary:
    """The dictionary of canonical arrays (:func:`read`, or a stored ``state()``): an SAE with an encoder, else
    the NNLS coder of the unit-norm atoms."""

    def tensor(name: str) -> torch.Tensor:
        return torch.as_tensor(np.asarray(arrays[name], dtype=np.float32), device=device)

    atoms = tensor("atoms")
    k, d = atoms.shape
    if "W_enc" not in arrays:
        norms = atoms.norm(dim=1, keepdim=True)
        return coder(atoms / torch.where(norms > _EPS, norms, torch.ones_like(norms)), spec)
    return SAEDictionary(
        atoms=atoms,
        encoder=tensor("W_enc"),
        b_enc=tensor("b_enc") if "b_enc" in arrays else atoms.new_zeros(k),
        b_dec=tensor("b_dec") if "b_dec" in arrays else atoms.new_zeros(d),
        threshold=tensor("threshold") if "threshold" in arrays else None,
        active=int(arrays["active"]) if "active" in arrays else None,
        center=bool(float(arrays.get("center", 1.0))),
    )


def check(spec: DictionarySpec, *, width: int, layer: str) -> tuple[Path, int]:
    """The configured file and its ``k``, checked from its header against a layer of ``width`` channels (at
    config time, before any job, and again by the fit): set, existing, known format and names, the same width."""
    path = check_path(spec)
    k, d, _ = describe(path)
    if d != width:
        raise ValueError(
            f"{KEY} '{path}': a dictionary of width d={d}, but layer '{layer}' has width {width}; use the file "
            "trained on this layer's activations or set complexity.dictionary.layer to the layer it was trained on"
        )
    return path, k


def _fit(rows: Rows, spec: DictionarySpec, ctx: FitContext) -> Dictionary:
    """Read the configured file (no fit), after checking its width against the layer's."""
    path, k = check(spec, width=rows.d, layer=ctx.layer)
    log.info(
        "file: %d atoms of width %d from %s (the file's k; complexity.dictionary.k=%d ignored)", k, rows.d, path, ctx.k
    )
    return build(read(path), spec, rows.device)


def _load(arrays: dict[str, np.ndarray], spec: DictionarySpec, device: torch.device) -> Dictionary:
    return build(arrays, spec, device)


METHOD = Method(
    "file",
    fit=_fit,
    load=_load,
    seeded=False,  # the same file at every seed: no second seed to compare
    check=lambda spec, width, layer: check(spec, width=width, layer=layer),
    summary="a dictionary trained elsewhere (SAE or decoder atoms) read from a .safetensors / .npz / .pt file",
)
