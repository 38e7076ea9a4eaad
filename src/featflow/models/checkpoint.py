"""Checkpoints: ``state_dict`` plus the spec needed to rebuild the model, loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from featflow.config import ModelSpec
from featflow.models.registry import Classifier, build_model
from featflow.store import atomic_path

FORMAT = "featflow-checkpoint-1"


def save_checkpoint(
    path: str | Path,
    model: Classifier,
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    meta: dict[str, Any],
) -> None:
    """Write the model's state_dict, its spec, input shape, class count and ``meta`` (accuracies, history)."""
    payload = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class CheckpointError(ValueError):
    """A weights or checkpoint file is missing, truncated, or not a torch.save file."""


def torch_file(path: str | Path, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; an unreadable file raises :class:`CheckpointError`
    naming the file and ``fix`` (torch's own errors name neither: "pop from empty list", "[Errno 22]")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found; {fix}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a torch.save file (no zip archive: text, truncated or legacy?); {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, IndexError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: unreadable torch.save file (truncated or corrupted: {err}); {fix}") from err


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; fails clearly on a file that is not a featflow checkpoint."""
    payload = torch_file(path, "delete it and rerun the train rule that wrote it")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a featflow checkpoint (expected format '{FORMAT}')")
    return payload


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the model from a checkpoint, in eval mode on ``device``; returns (model, checkpoint dict)."""
    payload = read_checkpoint(path)
    spec = ModelSpec.from_dict(payload["spec"])
    state = payload["state_dict"]
    model = build_model(spec, tuple(payload["input_shape"]), payload["num_classes"], state["mean"], state["std"])
    model.load_state_dict(state)
    return model.to(device).eval(), payload
