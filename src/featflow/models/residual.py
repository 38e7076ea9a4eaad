"""The two paths into every residual block: the skip connection and the main branch, read separately by hooks.

A residual block computes ``out = relu(main(x) + skip(x))``. Fel et al.'s feature-flow analysis asks which path
carries a feature into each block, so both summands are recorded before they are added. Known blocks: featflow's
:class:`~featflow.models.registry.ResBlock` (``main`` and ``skip`` modules) and torchvision's ``BasicBlock`` and
``Bottleneck`` (ResNet, Wide ResNet, ResNeXt: the main branch ends at ``bn2`` / ``bn3``, the skip is ``downsample``
or, without one, the block's input). :func:`main_zeroed` removes a block's main branch for an intervention.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from featflow.activations import pool
from featflow.models.registry import Classifier, ResBlock

PATHS = ("skip", "main", "out")


@dataclass(frozen=True)
class ResidualBlock:
    """Module names (in ``Classifier.body``) of one block, its skip path (None: the block's input) and the last
    module of its main branch; ``identity``: the skip adds the input unchanged (no projection)."""

    name: str
    skip: str | None
    main: str
    identity: bool


def _paths(name: str, module: nn.Module) -> ResidualBlock | None:
    if isinstance(module, ResBlock):
        return ResidualBlock(name, f"{name}.skip", f"{name}.main", isinstance(module.skip, nn.Identity))
    kind = type(module).__name__
    if kind in ("BasicBlock", "Bottleneck") and type(module).__module__.startswith("torchvision"):
        skip = f"{name}.downsample" if getattr(module, "downsample", None) is not None else None
        return ResidualBlock(name, skip, f"{name}.{'bn2' if kind == 'BasicBlock' else 'bn3'}", skip is None)
    return None


def residual_blocks(model: Classifier) -> list[ResidualBlock]:
    """The model's residual blocks in forward order (empty for a network without any)."""
    found = (_paths(name, module) for name, module in model.body.named_modules() if name)
    return [block for block in found if block is not None]


def select_blocks(model: Classifier, names: Sequence[str] | None) -> list[ResidualBlock]:
    """The named residual blocks (None: all); an unknown name fails with the model's block names."""
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError("complexity.flow: the model has no residual blocks (expected smallresnet or a ResNet)")
    if names is None:
        return blocks
    by_name = {block.name: block for block in blocks}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(
            f"config key 'complexity.flow.blocks': {unknown} are not residual blocks; expected {list(by_name)}"
        )
    return [by_name[name] for name in names]


@contextmanager
def capture_paths(
    model: Classifier, blocks: Sequence[ResidualBlock], pool_mode: str
) -> Iterator[dict[str, torch.Tensor]]:
    """Record ``{block}/skip``, ``{block}/main`` and ``{block}/out`` during forward passes, each pooled at once
    (:func:`featflow.activations.pool`): torchvision adds the skip into the main branch's output in place, so a
    stored tensor would change after the hook."""
    modules = dict(model.body.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def store_output(key: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            outputs[key] = pool(output, pool_mode)

        return hook

    def store_input(key: str):
        def hook(_module: nn.Module, inputs: tuple) -> None:
            outputs[key] = pool(inputs[0], pool_mode)

        return hook

    try:
        for block in blocks:
            if block.skip is None:
                handles.append(modules[block.name].register_forward_pre_hook(store_input(f"{block.name}/skip")))
            else:
                handles.append(modules[block.skip].register_forward_hook(store_output(f"{block.name}/skip")))
            handles.append(modules[block.main].register_forward_hook(store_output(f"{block.name}/main")))
            handles.append(modules[block.name].register_forward_hook(store_output(f"{block.name}/out")))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def main_zeroed(model: Classifier, block: ResidualBlock) -> Iterator[None]:
    """Forward passes with ``block``'s main branch replaced by zeros (a forward hook on its last module), so that
    the block computes ``relu(skip(x))``: only what its skip path carries passes on (the feature-flow ablation)."""

    def zero(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(output)

    handle = dict(model.body.named_modules())[block.main].register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()
