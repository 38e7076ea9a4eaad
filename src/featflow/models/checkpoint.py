"""Checkpoints: ``state_dict`` plus the spec needed to rebuild the model, loaded with ``weights_only=True``.

A checkpoint carries ``sha256``, a content hash over every tensor's name, dtype, shape and bytes (in sorted name
order) and the rest of the payload (as sorted JSON), computed at save and verified on every load: torch.save's zip
keeps no checksum that torch.load checks, so a flipped block of weights would otherwise be read back silently.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from featflow.config import ModelSpec
from featflow.models.registry import Classifier, build_model
from featflow.store import RERUN, atomic_path, corrupted

FORMAT = "featflow-checkpoint-2"  # 2: with the content hash
LEGACY = ("featflow-checkpoint-1",)
HASH_KEY = "sha256"
KEYS = {"format", "spec", "input_shape", "num_classes", "state_dict", "meta", HASH_KEY}
FIX = f"{RERUN} (train, or train_checkpoint for results/models/<model>/epoch_<e>.pt)"


def content_hash(payload: Mapping[str, Any]) -> str:
    """sha256 over the payload's tensors (name, dtype, shape, bytes; sorted by name) and its other entries (sorted
    JSON), the stored hash itself left out. Equal before torch.save and after torch.load."""
    digest = hashlib.sha256()
    rest = {key: value for key, value in payload.items() if key not in ("state_dict", HASH_KEY)}
    digest.update(json.dumps(rest, sort_keys=True, default=str).encode())
    state = payload.get("state_dict") or {}
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: Classifier,
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    meta: dict[str, Any],
) -> None:
    """Write the model's state_dict, its spec, input shape, class count, ``meta`` (accuracies, history) and the
    content hash of all of it."""
    payload = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    payload[HASH_KEY] = content_hash(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class CheckpointError(ValueError):
    """A weights or checkpoint file is missing, truncated, corrupted, or not a torch.save file."""


def torch_file(path: str | Path, fix: str, what: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; an unreadable file raises :class:`CheckpointError`
    naming the file and ``fix`` (torch's own errors name neither: "pop from empty list", "[Errno 22]").
    ``what`` names a file featflow wrote (``"checkpoint"``): a damaged one is then reported as corrupted."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found; {fix}")
    if not zipfile.is_zipfile(path):
        why = "no zip archive: text, truncated or legacy?"
        message = corrupted(path, what, why, fix) if what else f"{path}: not a torch.save file ({why}); {fix}"
        raise CheckpointError(message)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged zip or pickle raises almost anything (KeyError, UnicodeDecodeError, ...)
        why = f"unreadable torch.save file, truncated or corrupted: {type(err).__name__}: {_one_line(err)}"
        raise CheckpointError(corrupted(path, what or "file", why, fix)) from err


def _one_line(err: Exception) -> str:
    """torch's error on one line; of a weights-only refusal only the unpickler's reason, not its advice."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split())


def verify(path: str | Path, payload: Any) -> dict[str, Any]:
    """``payload`` if it is a featflow checkpoint whose content hash matches; :class:`CheckpointError` naming
    ``path`` and the fix otherwise. A dict with any of a checkpoint's entries is one gone wrong (corrupted): a
    flipped byte may hit an entry's name or the format string as well as the weights, or turn the pickle into
    another valid one (an int)."""
    if not isinstance(payload, dict) or not KEYS & set(payload):
        held = f"a dict of {sorted(map(str, payload))[:5]}" if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path}: corrupted checkpoint or not a featflow checkpoint (it holds {held}; expected a dict of format "
            f"'{FORMAT}'); {FIX}"
        )
    if payload.get("format") in LEGACY:
        old = payload["format"]
        raise CheckpointError(f"{path}: a featflow checkpoint without a content hash (format '{old}'); {FIX}")
    try:
        found = content_hash(payload)
    except Exception as err:  # a damaged payload may not even hash (a tensor entry that is no tensor)
        raise CheckpointError(corrupted(path, "checkpoint", f"its content cannot be hashed: {err}", FIX)) from err
    if found != payload.get(HASH_KEY) or payload.get("format") != FORMAT:
        why = f"content hash {found[:12]}... differs from the stored {str(payload.get(HASH_KEY))[:12]}..."
        raise CheckpointError(corrupted(path, "checkpoint", why, FIX))
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, its content hash verified; fails clearly on a corrupted file or one that is not a
    featflow checkpoint."""
    return verify(path, torch_file(path, FIX, "checkpoint"))


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the model from a checkpoint, in eval mode on ``device``; returns (model, checkpoint dict)."""
    payload = read_checkpoint(path)
    spec = ModelSpec.from_dict(payload["spec"])
    state = payload["state_dict"]
    model = build_model(spec, tuple(payload["input_shape"]), payload["num_classes"], state["mean"], state["std"])
    model.load_state_dict(state)
    return model.to(device).eval(), payload
