"""Essential vs adversarial frequency maps and their correlation (Basile et al.; SPEC 3.2).

Per image, a per-channel Fourier mask M (C, H, W) in [0, 1] minimizes CE(N(x_M), t) + lambda * mean|M| (the L1
norm divided by the mask size, so that lambda does not depend on the image size). The essential map uses the
clean image and its true label, the adversarial map the PGD image and the label the attack reached. The paired
maps (fftshifted, optionally max-pooled, flattened, standardized per feature, rows L2-normalized) are compared by
IdCor with a permutation p-value, mean cosine similarity and linear CKA. Written by hand: no library does this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from featflow import store
from featflow.frequency.attacks import frozen, pgd_linf
from featflow.frequency.fourier_masks import apply_mask, predict, seeded_test_images
from featflow.frequency.idcor import idcor, standardize
from featflow.frequency.spec import MapsSpec
from featflow.metrics.cka import linear_cka
from featflow.models import load_checkpoint

log = logging.getLogger(__name__)

KIND = "frequency_maps"
MIN_PAIRS = 4  # TwoNN needs a handful of distinct points


def frequency_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    lam: float,
    lr: float,
    max_steps: int,
    patience: int,
    tol: float,
) -> torch.Tensor:
    """Per-image, per-channel maps (N, C, H, W) for inputs ``x`` (N, C, H, W) toward labels ``target`` (N,).

    All images are optimized at once (the summed loss gives each map its own gradient); stops when every
    image's loss changed by less than ``tol`` for ``patience`` consecutive steps, or after ``max_steps``.
    """
    model.eval()
    with frozen(model):
        return _fit_maps(model, x, target, lam, lr, max_steps, patience, tol)


def _fit_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    lam: float,
    lr: float,
    max_steps: int,
    patience: int,
    tol: float,
) -> torch.Tensor:
    mask = torch.ones_like(x, requires_grad=True)
    opt = torch.optim.Adam([mask], lr=lr)
    calm = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    previous = torch.full((x.shape[0],), float("inf"), device=x.device)
    for _ in tqdm(range(max_steps), desc="frequency maps", unit="step", mininterval=5):
        loss = F.cross_entropy(model(apply_mask(x, mask)), target, reduction="none") + lam * mask.flatten(1).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            mask.clamp_(0.0, 1.0)
            calm = (calm + 1) * ((loss - previous).abs() < tol)
            previous = loss.detach()
        if bool((calm >= patience).all()):
            break
    return mask.detach()


def map_features(maps: torch.Tensor, pool: int) -> torch.Tensor:
    """(N, C, H, W) maps -> (N, D) rows: fftshift, max-pool by ``pool``, flatten, standardize per feature,
    L2-normalize each row."""
    shifted = torch.fft.fftshift(maps, dim=(-2, -1))
    if pool > 1:
        shifted = F.max_pool2d(shifted, pool)
    rows = standardize(shifted.flatten(1))
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of paired rows of ``a`` and ``b`` (N, D)."""
    return float(F.cosine_similarity(a, b, dim=1).mean())


def adversarial_frequency_maps(
    checkpoint: str | Path,
    data_path: str | Path,
    spec: MapsSpec,
    out_path: str | Path,
    table_path: str | Path,
    device: torch.device | str,
    seed: int,
    attrs: dict[str, Any],
) -> dict[str, float]:
    """Essential and adversarial maps of ``n_images`` test images of one model, and their correlation.

    Writes the maps, images and keep flags to ``out_path`` (HDF5 kind ``frequency_maps``) and one row of
    correlation measures to ``table_path`` (CSV). Returns that row.
    """
    model, _ = load_checkpoint(checkpoint, device)
    x, y, keep, generator = seeded_test_images(data_path, spec.n_images, seed, "frequency.maps.dataset")
    x, y = x.to(device), y.to(device)
    pred, _ = predict(model, x, device=device)
    x_adv = pgd_linf(
        model, x, y, spec.eps, spec.attack_steps, step_size=spec.attack_step * spec.eps, generator=generator
    )
    y_adv, _ = predict(model, x_adv, device=device)
    pred, y_adv = pred.to(device), y_adv.to(device)
    correct = pred == y
    attacked = correct & (y_adv != y)
    kw = {"lam": spec.lam, "lr": spec.lr, "max_steps": spec.max_steps, "patience": spec.patience, "tol": spec.tol}
    essential = frequency_maps(model, x, y, **kw)
    adversarial = frequency_maps(model, x_adv, y_adv, **kw)
    keep_e = correct & (predict(model, x, essential, device=device)[0].to(device) == y)
    keep_a = attacked & (predict(model, x_adv, adversarial, device=device)[0].to(device) == y_adv)
    paired = keep_e & keep_a
    row: dict[str, float] = {
        "n_images": int(x.shape[0]),
        "clean_acc": correct.float().mean().item(),
        "attack_success": (attacked.sum() / correct.sum().clamp_min(1)).item(),
        "n_essential": int(keep_e.sum()),
        "n_adversarial": int(keep_a.sum()),
        "n_pairs": int(paired.sum()),
    }
    id_perm = np.zeros(0)
    if row["n_pairs"] >= MIN_PAIRS:
        fe = map_features(essential[paired].cpu(), spec.pool)
        fa = map_features(adversarial[paired].cpu(), spec.pool)
        res = idcor(fe, fa, n_perm=spec.n_perm, scale=False, seed=seed, device=device)
        id_perm = res.id_perm
        row.update(
            {
                "idcor": res.idcor,
                "p_value": res.p_value,
                "id_essential": res.id_x,
                "id_adversarial": res.id_y,
                "id_joint": res.id_xy,
                "cosine": mean_cosine(fe, fa),
                "linear_cka": linear_cka(fe.numpy(), fa.numpy()),
            }
        )
    else:  # an inaccurate or unattackable network leaves nothing to correlate: say so instead of failing the DAG
        log.warning(
            "maps: only %d image(s) have both maps kept (need %d): correlations not computed; raise "
            "frequency.maps.n_images or use a more accurate model",
            row["n_pairs"],
            MIN_PAIRS,
        )
        row.update(
            dict.fromkeys(
                ("idcor", "p_value", "id_essential", "id_adversarial", "id_joint", "cosine", "linear_cka"), float("nan")
            )
        )
    log.info("maps: %s", row)
    arrays = {
        "essential": essential.cpu().numpy(),
        "adversarial": adversarial.cpu().numpy(),
        "images": x.cpu().numpy(),
        "adversarial_images": x_adv.cpu().numpy(),
        "indices": keep.numpy(),
        "labels": y.cpu().numpy(),
        "adversarial_labels": y_adv.cpu().numpy(),
        "keep_essential": keep_e.cpu().numpy(),
        "keep_adversarial": keep_a.cpu().numpy(),
        "paired": paired.cpu().numpy(),
        "id_perm": id_perm,
    }
    store.write_h5(out_path, KIND, arrays, {**attrs, **row})
    store.write_table(pd.DataFrame([row]), table_path)
    return row


def write_maps_figure(maps_path: str | Path, table_path: str | Path, png: str | Path) -> None:
    """The mean essential and adversarial maps of one model, titled with their correlation."""
    from featflow.plots.frequency import maps_figure

    row = pd.read_csv(table_path).iloc[0].to_dict()
    store.save_figure(maps_figure(store.read_h5(maps_path, KIND), row), png)
