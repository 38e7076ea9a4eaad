"""Adversarial attacks under L_inf: projected gradient descent (Madry et al. 2018), shared by adversarial
training and the adversarial frequency maps, and fast minimum-norm FMN (Pintor et al. 2021), the attack of
Basile et al.'s maps.

PGD is written by hand (a dozen lines). FMN comes from foolbox, the library the authors used
(``LInfFMNAttack``, minimal-norm mode); it is imported only when asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

T = TypeVar("T")


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """The model with parameter gradients off (only input-side gradients are needed); restored on exit."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def on_frozen_model(fit: Callable[..., T]) -> Callable[..., T]:
    """Run ``fit(model, ...)`` with the model in eval mode and its parameters frozen (restored afterwards)."""

    @functools.wraps(fit)
    def wrapper(model: nn.Module, *args: Any, **kwargs: Any) -> T:
        model.eval()
        with frozen(model):
            return fit(model, *args, **kwargs)

    return wrapper


def pgd_linf(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted L_inf PGD on inputs in [0, 1], maximizing the cross-entropy of the labels ``y``.

    Parameters
    ----------
    model : classifier taking (N, C, H, W) inputs in [0, 1]; its mode (train / eval) is left as the caller set it.
    x : (N, C, H, W) clean inputs in [0, 1].
    y : (N,) labels to move away from.
    eps : L_inf radius (in pixel units, e.g. 8/255).
    steps : number of signed-gradient steps.
    step_size : step length; ``eps / 8`` when None (the Fourier-mask paper's setting).
    random_start : start from a uniform point of the eps-ball (drawn with ``generator``, on its device).
    generator : torch.Generator for the random start.

    Returns
    -------
    (N, C, H, W) adversarial inputs, detached, within the eps-ball of ``x`` and in [0, 1].
    """
    if eps < 0 or steps < 0:
        raise ValueError(f"pgd_linf: eps {eps} and steps {steps} must be >= 0")
    alpha = eps / 8 if step_size is None else step_size
    x = x.detach()
    x_adv = x.clone()
    if random_start and eps > 0:
        gen_device = generator.device if generator is not None else x.device
        noise = torch.rand(x.shape, generator=generator, device=gen_device).to(x.device)
        x_adv = (x + (2 * noise - 1) * eps).clamp(0, 1)
    with frozen(model):
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def fmn_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """Minimal-norm L_inf FMN adversarials of ``x`` (N, C, H, W) in [0, 1] for labels ``y`` (foolbox's
    ``LInfFMNAttack`` with no epsilon bound, as the authors call it); images it cannot break come back unchanged
    from foolbox's best attempt. The model is used in the mode the caller set."""
    try:
        import foolbox
    except ImportError as err:
        raise ImportError("frequency.maps.attack 'fmn' needs foolbox (pip install foolbox)") from err
    if steps < 1:
        raise ValueError(f"fmn_linf: steps {steps} must be >= 1")
    with frozen(model):
        fmodel = foolbox.PyTorchModel(model, bounds=(0, 1), device=x.device)
        x_adv, _, _ = foolbox.attacks.LInfFMNAttack(steps=steps)(fmodel, x.detach(), y, epsilons=None)
    return x_adv.detach()
