"""Stage ``importance``: gradient x input of every feature for the model's predicted class (SPEC 1.6).

The network reads the reconstruction ``dec(z)``, linear in each code along its atom, so ``dy_c / dz_i = <d_i, g>``
with ``g`` the gradient of the predicted logit with respect to the dictionary layer at ``dec(z)`` (through
:func:`featflow.models.readout`): for the penultimate layer the class weight ``w_c`` (the paper's closed form),
for an earlier vector layer (a pre-ReLU ``fc1``) ``w_c`` masked by the ReLU at ``dec(z)``. Gamma, the per-activation
importance and the mean code are summed chunk by chunk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from featflow import store
from featflow.complexity.codes import KIND as CODES_KIND
from featflow.complexity.codes import layer_readout
from featflow.complexity.spec import ComplexitySpec
from featflow.dictionary import files
from featflow.metrics.importance import active_alignment, importance
from featflow.models import load_checkpoint

log = logging.getLogger(__name__)

Path_ = str | Path


def logit_gradients(head: torch.nn.Module, acts: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """(n, d) gradient of each sample's ``classes`` logit with respect to its activation (samples independent)."""
    a = acts.detach().requires_grad_(True)
    logits = head(a)
    (grads,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), a)
    return grads


def compute_importance(
    spec: ComplexitySpec,
    *,
    checkpoint: Path_,
    codes: Path_,
    activations: Path_,
    dictionary: Path_,
    out: Path_,
    attrs: dict[str, Any],
) -> None:
    """Signed and absolute Gamma, the per-activation importance E[|<d_i, g>| | z_i > 0] and the mean code, with
    ``g`` the predicted logit's gradient at the reconstruction ``dec(z)`` (the network that reads the codes)."""
    model, _ = load_checkpoint(checkpoint, "cpu")
    layer = store.read_attrs(dictionary, files.KIND)["layer"]
    head = layer_readout(model, activations, layer).double()
    fitted = files.read(dictionary, spec.dictionary)
    atoms = fitted.atoms.double()
    sums, n = torch.zeros(5, atoms.shape[0], dtype=torch.float64), 0
    sources = [(codes, CODES_KIND, "codes"), (activations, "activations", "logits")]
    for _, (z, logits) in store.iter_rows(sources):
        z_, classes = torch.from_numpy(z).double(), torch.from_numpy(logits.argmax(1))
        grads = logit_gradients(head, fitted.decode(z_.float()).double(), classes)
        means = importance(z_, atoms, grads)
        chunk = (*(m * len(z) for m in means), *active_alignment(z_, atoms, grads), z_.sum(0))
        sums, n = sums + torch.stack(chunk), n + len(z)
    signed, absolute = sums[:2] / n
    arrays = {
        "signed": signed.numpy(),
        "absolute": absolute.numpy(),
        "per_activation": (sums[2] / sums[3]).numpy(),  # 0 / 0 = NaN for a feature never active
        "mean_code": (sums[4] / n).numpy(),
    }
    log.info("importance: %d inhibitors of %d features", int((signed < 0).sum()), signed.shape[0])
    store.write_h5(out, "complexity-importance", arrays, {**attrs, "layer": layer, "gradient": _gradient_kind(head)})


def _gradient_kind(head: torch.nn.Module) -> str:
    """``class weight`` when the readout is one linear layer (the paper's closed form), else ``autograd``."""
    return "class weight" if isinstance(head, torch.nn.Linear) else "autograd through " + type(head).__name__
