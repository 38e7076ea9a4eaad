"""Closed-form gradient x input importance of every feature (SPEC 1.6).

The classifier is linear in the penultimate layer and ``f ~ z D``, so ``dy_c / dz_i = <d_i, w_c>`` and
``Gamma_i = E_x[z_i(x) <d_i, w_{c(x)}>]`` with c(x) the predicted class. The functions take the per-sample gradient
``g(x)`` of the predicted logit with respect to the dictionary layer: ``w_c(x)`` there, the same closed form through
the readout's local linearization for an earlier layer (featflow.complexity.importance).

Gamma scales with the code: a feature with large codes is "important" whatever its direction does. The
per-activation importance ``E[|<d_i, w_c(x)>| | z_i(x) > 0]`` (the class-weight alignment of the atom, averaged
over the samples that use the feature) leaves the code's size out, so its relation to complexity can be read
apart from the code magnitude (issue 26.5).
"""

from __future__ import annotations

import torch


def importance(codes: torch.Tensor, atoms: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed and absolute gradient x input of every feature.

    Parameters
    ----------
    codes : (n, k).  atoms : (k, d).  grads : (n, d) gradient of each sample's predicted logit with respect to the
        dictionary layer (the class weights w_c(x) when the layer feeds the linear classifier).

    Returns
    -------
    signed : (k,) E_x[z_i <d_i, g(x)>] (inhibitors < 0).  absolute : (k,) E_x|z_i <d_i, g(x)>|.
    """
    if atoms.shape[1] != grads.shape[1]:
        raise ValueError(f"importance: atoms have d={atoms.shape[1]}, logit gradients d={grads.shape[1]}")
    if codes.shape[0] != grads.shape[0]:
        raise ValueError(f"importance: {codes.shape[0]} codes but {grads.shape[0]} logit gradients")
    contrib = codes * (grads @ atoms.T)  # (n, k): z_i <d_i, g(x)>
    return contrib.mean(0), contrib.abs().mean(0)


def active_alignment(
    codes: torch.Tensor, atoms: torch.Tensor, grads: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over the samples with z_i > 0 of |<d_i, g(x)>|, and the number of those samples: (k,), (k,).

    Sums (not means) so that chunks add up; their ratio is the per-activation importance
    E[|<d_i, g(x)>| | z_i > 0].
    """
    active = codes > 0
    return ((grads @ atoms.T).abs() * active).sum(0), active.sum(0).to(codes.dtype)
