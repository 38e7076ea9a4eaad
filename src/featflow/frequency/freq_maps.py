"""Essential vs adversarial frequency maps and their correlation (Basile et al.; SPEC 3.2).

Per image, a per-channel Fourier mask M (C, H, W) in [0, 1] minimizes CE(N(x_M), t) + lambda * sum|M|, the L1
norm summed over all C * H * W weights as in the authors' code (so lambda means the paper's lambda: 0.5 on
32 x 32 CIFAR-10). The essential map uses the clean image and its true label, the adversarial map the attacked
image (PGD, or FMN as in the authors' default) and the label the attack reached. Each map runs to the authors'
convergence rule (at least ``min_steps`` steps, then until the loss is within ``tol`` of the mean of its last
``window`` values; at most ``max_steps``), and every map's steps and convergence are recorded.

Every map's support is recorded (weights above ``SUPPORT_REL`` of its largest, and whether only the DC terms are
kept): when the L1-cheapest map is a gain on the mean intensity, no correlation of the maps says anything about the
frequencies; below ``min_support`` kept weights per map (median over the correlated maps) the comparison is flagged.

The paired maps (fftshifted, max-pooled by ``pool`` (featflow's choice; the authors do not pool), flattened) are
compared as the authors do: IdCor with a rank permutation p-value on standardized, row-normalized rows; mean
cosine similarity, SVCCA and linear CKA on the raw rows. The authors' own p-value (correlation.py: TwoNN of the raw,
unpooled maps side by side against 50 row shuffles, Gaussian z-score) is reported beside. Written by hand: no
library does this.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from featflow import store
from featflow.frequency.figures import MAPS_KIND
from featflow.frequency.idcor import idcor, standardize, twonn
from featflow.frequency.images import seeded_test_images
from featflow.frequency.masks import apply_mask, predict
from featflow.frequency.spec import MapsSpec
from featflow.metrics.cka import linear_cka
from featflow.models import load_checkpoint
from featflow.models.attacks import fmn_linf, on_frozen_model, pgd_linf

log = logging.getLogger(__name__)

KIND = MAPS_KIND
MIN_PAIRS = 4  # TwoNN needs a handful of distinct points
SUPPORT_REL = 1e-3  # a map weight above this share of the map's largest counts as kept (SPEC 3.2)
MEASURES = (
    "idcor",
    "p_value",
    "p_value_stratified",
    "id_essential",
    "id_adversarial",
    "id_joint",
    "cosine",
    "svcca",
    "linear_cka",
    "z_authors",
    "p_value_authors",
)


@dataclasses.dataclass(frozen=True)
class MapFit:
    """Maps (N, C, H, W) and their convergence record: steps run, converged flag and final loss, each (N,)."""

    maps: torch.Tensor
    steps: np.ndarray
    converged: np.ndarray
    loss: np.ndarray


def map_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-image CE(N(x_M), t) + lam * sum|M| (N,): the L1 norm summed over each map's C * H * W weights."""
    return F.cross_entropy(logits, target, reduction="none") + lam * mask.abs().flatten(1).sum(1)


@on_frozen_model
def frequency_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    lam: float,
    lr: float,
    min_steps: int,
    max_steps: int,
    window: int,
    tol: float,
) -> MapFit:
    """Per-image, per-channel maps for inputs ``x`` (N, C, H, W) toward labels ``target`` (N,).

    All images are optimized at once (Adam is elementwise, so each map follows its own batch-1 trajectory). A
    map converges, as in the authors' code, at the first step after ``min_steps`` where its loss is within
    ``tol`` of the mean of its last ``window`` losses; it is then kept and leaves the batch. Maps still moving
    after ``max_steps`` are returned as they are, marked unconverged.
    """
    n = x.shape[0]
    mask = torch.ones_like(x, requires_grad=True)
    opt = torch.optim.Adam([mask], lr=lr)
    recent = torch.zeros(window, n, dtype=x.dtype, device=x.device)  # the last `window` losses of every map
    final, last_loss = torch.ones_like(x), torch.zeros(n, dtype=x.dtype, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    steps = torch.full((n,), max_steps, dtype=torch.long, device=x.device)
    for step in tqdm(range(1, max_steps + 1), desc="frequency maps", unit="step", mininterval=5):
        active = (~done).nonzero().squeeze(1)
        loss = map_loss(model(apply_mask(x[active], mask[active])), target[active], mask[active], lam)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            mask.clamp_(0.0, 1.0)
            recent[step % window, active] = loss.detach()
            last_loss[active] = loss.detach()
            flat = (loss.detach() - recent[:, active].mean(0)).abs() < tol
            if step > max(min_steps, window - 1) and bool(flat.any()):
                stop = active[flat]
                final[stop], steps[stop], done[stop] = mask[stop], step, True
        if bool(done.all()):
            break
    with torch.no_grad():
        final[~done] = mask[~done]
    return MapFit(final.detach(), steps.cpu().numpy(), done.cpu().numpy(), last_loss.cpu().numpy())


def split_fit(fit: MapFit) -> tuple[MapFit, MapFit]:
    """The first and second halves of a fit of 2N maps, as two fits of N maps."""
    n = fit.maps.shape[0] // 2
    halves = [slice(0, n), slice(n, 2 * n)]
    return tuple(MapFit(fit.maps[h], fit.steps[h], fit.converged[h], fit.loss[h]) for h in halves)


def map_support(maps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per map of (N, C, H, W) (unshifted fft2 grid): the number of weights above ``SUPPORT_REL`` x the map's
    largest weight, and whether the kept weights are only the DC terms (frequency (0, 0) of each channel): a gain on
    the mean intensity, not a choice of frequencies. An all-zero map keeps nothing (count 0, DC-only)."""
    top = maps.flatten(1).amax(1).clamp_min(1e-12)
    kept = maps > SUPPORT_REL * top[:, None, None, None]
    count = kept.flatten(1).sum(1)
    return count.cpu().numpy(), (count == kept[..., 0, 0].sum(1)).cpu().numpy()


def authors_p_value(
    essential: torch.Tensor, adversarial: torch.Tensor, n_shuffles: int, seed: int
) -> tuple[float, float]:
    """The authors' test of dependence (ImplicitBiasAdversarial's correlation.py): the TwoNN dimension of the raw,
    unpooled, unstandardized maps (N, C, H, W) side by side against ``n_shuffles`` shuffles of the essential maps'
    rows; z = (Id - mean) / std of the shuffles (population std), p = Phi(z), one-sided (dependence lowers the
    joint dimension). Returns (z, p); NaN when the shuffles do not vary."""
    a, b = essential.flatten(1).double().cpu(), adversarial.flatten(1).double().cpu()
    observed = twonn(torch.cat([a, b], 1))
    gen = torch.Generator().manual_seed(seed)
    null = np.array([twonn(torch.cat([a[torch.randperm(a.shape[0], generator=gen)], b], 1)) for _ in range(n_shuffles)])
    if n_shuffles < 2 or null.std() == 0:
        return float("nan"), float("nan")
    z = (observed - null.mean()) / null.std()
    return float(z), float(stats.norm.cdf(z))


def map_rows(maps: torch.Tensor, pool: int) -> torch.Tensor:
    """(N, C, H, W) maps -> (N, D) rows: fftshift, max-pool by ``pool`` (featflow's choice: the authors correlate
    the unpooled maps), flatten."""
    shifted = torch.fft.fftshift(maps, dim=(-2, -1))
    if pool > 1:
        shifted = F.max_pool2d(shifted, pool)
    return shifted.flatten(1).double()


def idcor_rows(rows: torch.Tensor) -> torch.Tensor:
    """IdCor's own preprocessing of (N, D) rows (the authors' id_correlation): standardize every feature, then
    L2-normalize every row."""
    rows = standardize(rows)
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of paired rows of ``a`` and ``b`` (N, D)."""
    return float(F.cosine_similarity(a, b, dim=1).mean())


def _singular_reduction(x: torch.Tensor, keep: float) -> torch.Tensor:
    """``x`` projected on its leading right singular directions whose cumulative singular-value share is below
    ``keep`` (at least one)."""
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    k = max(1, int((s.cumsum(0) / s.sum() < keep).sum()))
    return x @ vh[:k].T


def canonical_correlations(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Canonical correlations of (N, Da) and (N, Db), columns centered: the singular values of U_a^T U_b, U the
    orthonormal bases of the centered column spaces (rank-deficient directions dropped)."""

    def basis(m: torch.Tensor) -> torch.Tensor:
        u, s, _ = torch.linalg.svd(m - m.mean(0), full_matrices=False)
        return u[:, s > s.max() * max(m.shape) * torch.finfo(m.dtype).eps]

    return torch.linalg.svdvals(basis(a).T @ basis(b)).clamp(0.0, 1.0)


def svcca(a: torch.Tensor, b: torch.Tensor, keep: float = 0.99) -> float:
    """SVCCA similarity (Raghu et al. 2017) of paired rows, as the authors compute it (anatome's
    ``1 - svcca_distance`` with accept_rate 0.99): each set reduced by :func:`_singular_reduction` (SVD of the
    uncentered rows, singular values, not their squares, counted), then the mean of the min(k_a, k_b) canonical
    correlations. Differs from anatome only in keeping at least one direction."""
    a, b = _singular_reduction(a.double(), keep), _singular_reduction(b.double(), keep)
    rho = canonical_correlations(a, b)
    return float(rho.sum() / min(a.shape[1], b.shape[1]))


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: MapsSpec, generator: torch.Generator):
    """Adversarial images of ``x`` under ``spec.attack``: L_inf PGD in the eps-ball, or minimal-norm L_inf FMN
    (the authors' default; its perturbation is as small as it finds, not bounded by eps)."""
    if spec.attack == "pgd":
        step = spec.attack_step * spec.eps
        return pgd_linf(model, x, y, spec.eps, spec.attack_steps, step_size=step, generator=generator)
    return fmn_linf(model, x, y, steps=spec.attack_steps)


def correlate_maps(
    essential: torch.Tensor,
    adversarial: torch.Tensor,
    labels: torch.Tensor,
    spec: MapsSpec,
    *,
    device: torch.device | str,
    seed: int,
) -> tuple[dict[str, float], np.ndarray]:
    """The correlation measures of paired maps (N, C, H, W) of images of classes ``labels`` (N,), and the IdCor
    row-shuffle null (S,). The rank p-value shuffles all rows (pooled rows), the within-class one shuffles inside
    classes, and the authors' z-score p (raw, unpooled maps) is beside."""
    re, ra = map_rows(essential.cpu(), spec.pool), map_rows(adversarial.cpu(), spec.pool)
    res = idcor(
        idcor_rows(re),
        idcor_rows(ra),
        n_perm=spec.n_perm,
        scale=False,
        seed=seed,
        device=device,
        strata=labels.cpu().numpy(),
    )
    row = {
        "idcor": res.idcor,
        "p_value": res.p_value,
        "p_value_stratified": res.p_stratified,
        "id_essential": res.id_x,
        "id_adversarial": res.id_y,
        "id_joint": res.id_xy,
        "cosine": mean_cosine(re, ra),
        "svcca": svcca(re, ra),
        "linear_cka": linear_cka(re.numpy(), ra.numpy()),
    }
    row["z_authors"], row["p_value_authors"] = authors_p_value(essential, adversarial, spec.authors_shuffles, seed)
    return row, res.id_perm


def support_record(essential: torch.Tensor, adversarial: torch.Tensor, paired: np.ndarray) -> dict[str, np.ndarray]:
    """Per map of both families (N,): kept weights and DC-only flag (:func:`map_support`), stored in maps.h5."""
    (n_e, dc_e), (n_a, dc_a) = map_support(essential), map_support(adversarial)
    return {"essential": n_e, "adversarial": n_a, "essential_dc_only": dc_e, "adversarial_dc_only": dc_a}


def support_summary(support: dict[str, np.ndarray], paired: np.ndarray, min_support: int) -> dict[str, Any]:
    """maps.csv's support columns over the correlated (paired) maps: median kept weights and DC-only share per
    family, the threshold, and ``support_ok`` (both medians >= ``min_support``). Warns when it fails: the IdCor,
    cosine and SVCCA comparison then compares gains on a few frequencies, and its claims are not applicable."""
    row: dict[str, Any] = {"support_min": min_support}
    for fam in ("essential", "adversarial"):
        kept = support[fam][paired]
        row[f"support_median_{fam}"] = float(np.median(kept)) if kept.size else float("nan")
        row[f"dc_only_{fam}"] = float(support[f"{fam}_dc_only"][paired].mean()) if kept.size else float("nan")
    row["support_ok"] = bool(min(row["support_median_essential"], row["support_median_adversarial"]) >= min_support)
    if paired.any() and not row["support_ok"]:
        log.warning(
            "maps: median support %.1f essential, %.1f adversarial weights per map (DC-only %.0f%% / %.0f%%) is "
            "below frequency.maps.min_support %d: the maps compare a few gains, not frequencies; the comparison "
            "claims are not applicable (lower frequency.maps.lam)",
            row["support_median_essential"],
            row["support_median_adversarial"],
            100 * row["dc_only_essential"],
            100 * row["dc_only_adversarial"],
            min_support,
        )
    return row


def adversarial_frequency_maps(
    checkpoint: str | Path,
    data_path: str | Path,
    spec: MapsSpec,
    out_path: str | Path,
    table_path: str | Path,
    *,
    device: torch.device | str,
    seed: int,
    attrs: dict[str, Any],
) -> dict[str, float]:
    """Essential and adversarial maps of ``n_images`` test images of one model, and their correlation.

    Writes the maps, images, keep flags and convergence records to ``out_path`` (HDF5 kind ``frequency_maps``)
    and one row of correlation measures to ``table_path`` (CSV). Returns that row.
    """
    model, _ = load_checkpoint(checkpoint, device)
    x, y, keep, generator = seeded_test_images(data_path, spec.n_images, seed, "frequency.maps.dataset")
    x, y = x.to(device), y.to(device)
    pred, _ = predict(model, x, device=device)
    x_adv = attack(model, x, y, spec, generator)
    y_adv, _ = predict(model, x_adv, device=device)
    pred, y_adv = pred.to(device), y_adv.to(device)
    correct = pred == y
    attacked = correct & (y_adv != y)
    kw = {k: getattr(spec, k) for k in ("lam", "lr", "min_steps", "max_steps", "window", "tol")}
    # both families in one batch (maps are independent: one loop, larger matrix products), then split
    essential, adversarial = split_fit(frequency_maps(model, torch.cat([x, x_adv]), torch.cat([y, y_adv]), **kw))
    keep_e = correct & (predict(model, x, essential.maps, device=device)[0].to(device) == y)
    keep_a = attacked & (predict(model, x_adv, adversarial.maps, device=device)[0].to(device) == y_adv)
    paired = keep_e & keep_a
    paired_np = paired.cpu().numpy()
    conv_e, conv_a = essential.converged[paired_np], adversarial.converged[paired_np]
    row: dict[str, Any] = {
        "attack": spec.attack,
        "pool": spec.pool,
        "n_images": int(x.shape[0]),
        "clean_acc": correct.float().mean().item(),
        "attack_success": (attacked.sum() / correct.sum().clamp_min(1)).item(),
        "attack_linf_median": float((x_adv - x)[attacked].flatten(1).abs().amax(1).median()) if attacked.any() else 0,
        "n_essential": int(keep_e.sum()),
        "n_adversarial": int(keep_a.sum()),
        "n_pairs": int(paired.sum()),
        "converged_essential": float(conv_e.mean()) if conv_e.size else float("nan"),
        "converged_adversarial": float(conv_a.mean()) if conv_a.size else float("nan"),
        "steps_max": int(max(essential.steps.max(), adversarial.steps.max())),
        "density_essential": float(essential.maps[paired].mean()) if paired.any() else float("nan"),
        "density_adversarial": float(adversarial.maps[paired].mean()) if paired.any() else float("nan"),
    }
    row["all_converged"] = bool(conv_e.all() and conv_a.all())
    support = support_record(essential.maps, adversarial.maps, paired_np)
    row.update(support_summary(support, paired_np, spec.min_support))
    if not row["all_converged"]:
        log.warning(
            "maps: %d essential and %d adversarial maps of the kept pairs did not converge within "
            "frequency.maps.max_steps %d; their correlation is flagged",
            int((~conv_e).sum()),
            int((~conv_a).sum()),
            spec.max_steps,
        )
    id_perm = np.zeros(0)
    if row["n_pairs"] >= MIN_PAIRS:
        measures, id_perm = correlate_maps(
            essential.maps[paired], adversarial.maps[paired], y[paired], spec, seed=seed, device=device
        )
        row.update(measures)
    else:  # an inaccurate or unattackable network leaves nothing to correlate: say so instead of failing the DAG
        log.warning(
            "maps: only %d image(s) have both maps kept (need %d): correlations not computed; raise "
            "frequency.maps.n_images or use a more accurate model",
            row["n_pairs"],
            MIN_PAIRS,
        )
        row.update(dict.fromkeys(MEASURES, float("nan")))
    log.info("maps: %s", row)
    arrays = {
        "essential": essential.maps.cpu().numpy(),
        "adversarial": adversarial.maps.cpu().numpy(),
        "images": x.cpu().numpy(),
        "adversarial_images": x_adv.cpu().numpy(),
        "indices": keep.numpy(),
        "labels": y.cpu().numpy(),
        "adversarial_labels": y_adv.cpu().numpy(),
        "keep_essential": keep_e.cpu().numpy(),
        "keep_adversarial": keep_a.cpu().numpy(),
        "paired": paired_np,
        "id_perm": id_perm,
        "support": support,
        "convergence": {
            "essential_steps": essential.steps,
            "essential_converged": essential.converged,
            "essential_loss": essential.loss,
            "adversarial_steps": adversarial.steps,
            "adversarial_converged": adversarial.converged,
            "adversarial_loss": adversarial.loss,
        },
    }
    store.write_h5(out_path, KIND, arrays, {**attrs, **row})
    store.write_table(pd.DataFrame([row]), table_path)
    return row
