"""Forward hooks on named layers, always removed, with an optional early stop after the last needed layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from featflow.models.registry import Classifier, resolve_layer


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass once every needed layer has run."""


@contextmanager
def capture(model: Classifier, names: Sequence[str], stop_after: str | None = None) -> Iterator[dict]:
    """Record the outputs of layers ``names`` into the yielded dict during forward passes.

    With ``stop_after``, the forward pass ends right after that layer; run it with :func:`run_until`.
    Outputs keep their autograd graph, so callers doing FV can differentiate through them.
    """
    modules = {name: resolve_layer(model, name) for name in names}
    if stop_after is not None and stop_after not in modules:
        modules[stop_after] = resolve_layer(model, stop_after)
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if name in names:
                outputs[name] = output
            if name == stop_after:
                raise _StopForward

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run_until(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """Run ``model(x)``; return the logits, or None when a ``stop_after`` hook ended the pass early."""
    try:
        return model(x)
    except _StopForward:
        return None


def forward_to(model: Classifier, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of ``layer`` for input ``x``, without computing anything after it."""
    with capture(model, [layer], stop_after=layer) as outputs:
        run_until(model, x)
    return outputs[layer]
