"""Model registry, training, checkpoints and layer hooks."""

from featflow.models.checkpoint import load_checkpoint, save_checkpoint
from featflow.models.hooks import capture, forward_to
from featflow.models.registry import (
    Classifier,
    build_model,
    check_readout,
    classifier_head,
    layer_names,
    readout,
    resolve_layer,
)

__all__ = [
    "Classifier",
    "build_model",
    "capture",
    "check_readout",
    "classifier_head",
    "forward_to",
    "layer_names",
    "load_checkpoint",
    "readout",
    "resolve_layer",
    "save_checkpoint",
]
