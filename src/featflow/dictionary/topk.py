"""A TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") and BatchTopK
(Bussmann et al. 2024), trained with Adam on a layer's rows streamed from the activations file.

``z = TopK(ReLU(W_enc (a - b_dec) + b_enc))`` keeps ``active`` latents per sample and ``a ~ z D + b_dec``, with
unit-norm decoder atoms ``D`` (k, d): the ``d_i`` of importance and of the pictures. The recipe is Gao et al.'s:
decoder rows random unit vectors, encoder initialized as the decoder's transpose, ``b_dec`` at the data mean
(their geometric median: the mean here, one streamed pass), the loss the batch's squared error over the data's
variance (the FVU; theirs over the batch's own) plus ``aux_coef`` times the AuxK loss (sec. 2.4: the top ``auxk``
latents among those not active for ``dead_steps`` steps reconstruct the residual), the decoder gradient's
component parallel to each atom removed before each step and the atoms renormalized after it. The activations are
scaled by one scalar so that their mean squared norm is ``d`` while training (Adam's step then means the same on
every layer); the scale is folded into the stored biases (ReLU and TopK commute with a positive scale), so codes
and reconstructions are in the layer's units and ``state()`` keeps it only as a record. BatchTopK keeps the
``active * b`` largest ReLU pre-activations of a batch of ``b`` samples; new inputs keep the latents whose
pre-activation reaches a threshold: the mean over one pass with the final weights of each batch's smallest kept
value (Bussmann et al. average it over training batches).
A training step computes the dense pre-activations once without autograd, picks the kept latents, and recomputes
their values from the gathered encoder rows: the backward pass and the decoder cost O(batch x active x d) instead of
(batch x k x d) products (the sparse kernels of Gao et al.; the AuxK loss runs on the dead latents' rows only). Same
seed, same weights on the CPU; on CUDA the gathered rows' gradients are summed with atomics (last bits may differ).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from featflow.dictionary.base import FitContext, Method, Rows
from featflow.dictionary.spec import DictionarySpec, TopKSpec

log = logging.getLogger(__name__)

_EPS = 1e-12


def topk_codes(pre: torch.Tensor, active: int) -> torch.Tensor:
    """TopK: each row keeps its ``active`` largest pre-activations, ReLU'd (fewer nonzeros where fewer are > 0)."""
    top = torch.topk(pre, active, dim=1)
    return torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())


def batch_topk_codes(pre: torch.Tensor, active: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchTopK: the batch keeps its ``active * b`` largest ReLU'd pre-activations (mean L0 ``active``); also
    returns the smallest kept value (what the inference threshold averages)."""
    top = torch.topk(pre.relu().flatten(), active * pre.shape[0])
    codes = torch.zeros_like(pre).flatten().scatter(0, top.indices, top.values).view_as(pre)
    return codes, top.values[-1]


@dataclass
class TopKDictionary:
    """A sparse autoencoder behind the :class:`~featflow.dictionary.base.Dictionary` contract, in the layer's units.

    ``atoms`` (k, d) unit-norm decoder rows, ``w_enc`` (k, d) encoder (pre-activations ``(a - b_dec) w_enc^T +
    b_enc``), ``b_enc`` (k,), ``b_dec`` (d,); ``active`` latents per sample (TopK) or, with ``threshold`` set
    (BatchTopK), every latent whose pre-activation reaches it. ``scale``: the training's input scale, already
    folded into the biases (a record). ``encode`` is differentiable in its input and :meth:`gate` gives the
    pre-activations with the thresholds they must reach (the pictures maximize a code through them).
    """

    atoms: torch.Tensor
    w_enc: torch.Tensor
    b_enc: torch.Tensor
    b_dec: torch.Tensor
    active: int
    threshold: float | None = None
    scale: float = 1.0

    @property
    def signed_atoms(self) -> bool:
        return True

    @property
    def signed_codes(self) -> bool:
        return False

    def pre_activations(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, k) ``W_enc (a - b_dec) + b_enc``."""
        return torch.addmm(self.b_enc, a.to(self.atoms) - self.b_dec, self.w_enc.T)

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) activations -> (n, k) codes >= 0, differentiable in ``a`` (no weight requires a gradient, so no
        graph is built unless ``a`` asks for one)."""
        pre = self.pre_activations(a)
        if self.threshold is None:
            return topk_codes(pre, self.active)
        return pre.relu() * (pre >= self.threshold)

    def gate(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activations, the threshold each must reach), differentiable in ``a``: ``encode`` is pre where pre
        >= threshold (ties aside), else 0. TopK: the row's ``active``-th largest ReLU'd pre-activation (at least
        0); BatchTopK: the learned threshold. The pictures of features differentiate codes through it
        (:class:`featflow.fv.atoms.Gated`)."""
        pre = self.pre_activations(a)
        if self.threshold is None:
            return pre, pre.relu().topk(self.active, dim=1).values[:, -1:]
        return pre, pre.new_tensor(self.threshold)

    def encode_report(self, a: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Codes and None: a closed-form encoder has no tolerance to report."""
        return self.encode(a), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, k) codes -> (n, d) reconstructions ``z D + b_dec``."""
        return torch.addmm(self.b_dec, z.to(self.atoms), self.atoms)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {
            "atoms": self.atoms,
            "W_enc": self.w_enc,
            "b_enc": self.b_enc,
            "b_dec": self.b_dec,
            "scale": torch.tensor(self.scale),
        }
        if self.threshold is not None:
            arrays["threshold"] = torch.tensor(self.threshold)
        state = {name: value.detach().float().cpu().numpy() for name, value in arrays.items()}
        return {**state, "active": np.asarray(self.active, dtype=np.int64)}

    def to(self, device: torch.device | str) -> TopKDictionary:
        return dataclasses.replace(
            self,
            atoms=self.atoms.to(device),
            w_enc=self.w_enc.to(device),
            b_enc=self.b_enc.to(device),
            b_dec=self.b_dec.to(device),
        )


@dataclass
class Params:
    """The trained tensors in the training's scaled units (``a * scale``), each a leaf with a gradient."""

    atoms: torch.Tensor
    w_enc: torch.Tensor
    b_enc: torch.Tensor
    b_dec: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        return [self.atoms, self.w_enc, self.b_enc, self.b_dec]

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``W_enc (x - b_dec) + b_enc`` as ``W_enc x + (b_enc - W_enc b_dec)``: ``b_dec``'s gradient then costs a
        matrix-vector product, not a (batch, k) x (k, d) one."""
        return torch.addmm(self.b_enc - self.w_enc @ self.b_dec, x, self.w_enc.T)


@dataclass(frozen=True)
class Moments:
    """One streamed pass over the rows: their count, mean (d,), mean squared norm and total variance."""

    rows: int
    mean: torch.Tensor
    sq_norm: float
    variance: float

    @property
    def scale(self) -> float:
        """The scalar that brings the rows' mean squared norm to ``d``."""
        return math.sqrt(self.mean.shape[0] / max(self.sq_norm, _EPS))

    @property
    def row_variance(self) -> float:
        """The rows' variance per row (the trace of their covariance) in the training's scaled units."""
        return max(self.variance / self.rows * self.scale**2, _EPS)


def moments(rows: Rows) -> Moments:
    """Mean and second moment of the rows in float64, streamed in file order (memory independent of ``n``)."""
    count, total, sq = 0, torch.zeros(rows.d, dtype=torch.float64, device=rows.device), 0.0
    for batch in rows.batches(65536):
        count += batch.shape[0]
        total += batch.sum(0, dtype=torch.float64)
        sq += float(batch.double().pow(2).sum())
    if count == 0:
        raise ValueError("topk: the layer has no rows to train on")
    mean = total / count
    return Moments(count, mean.float(), sq / count, sq - count * float(mean.pow(2).sum()))


def init_params(k: int, mean: torch.Tensor, generator: torch.Generator) -> Params:
    """Gao et al.'s initialization: random unit decoder rows, the encoder their transpose, ``b_enc`` 0, ``b_dec``
    at the data mean (scaled units)."""
    atoms = torch.randn(k, mean.shape[0], generator=generator, device=generator.device, dtype=torch.float32)
    atoms = atoms.to(mean.device)
    atoms /= atoms.norm(dim=1, keepdim=True).clamp_min(_EPS)
    params = Params(atoms, atoms.clone(), torch.zeros(k, device=mean.device), mean.clone())
    for tensor in params.tensors():
        tensor.requires_grad_(True)
    return params


@dataclass(frozen=True)
class Kept:
    """The latents a batch keeps, as (sample ``rows``, latent ``cols``) pairs with their ReLU'd ``values`` (autograd
    through the gathered encoder rows), and BatchTopK's smallest kept pre-activation (None for TopK)."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    smallest: torch.Tensor | None


def keep(params: Params, x: torch.Tensor, *, active: int, batch_topk: bool) -> Kept:
    """Which latents a batch keeps (TopK per row, or BatchTopK's ``active * b`` largest of the batch) from dense
    pre-activations without autograd, then their values recomputed from the gathered encoder rows with it: the
    gradient of TopK reaches only the kept latents, so the backward pass costs O(b active d), not a (b, k) x (k, d)
    product (the sparse kernels of Gao et al.)."""
    b, k = x.shape[0], params.atoms.shape[0]
    with torch.no_grad():
        pre = params.pre_activations(x)
        if batch_topk:
            top = torch.topk(pre.relu().flatten(), active * b)
            rows, cols, smallest = top.indices // k, top.indices % k, top.values[-1]
        else:
            cols = torch.topk(pre, active, dim=1).indices.flatten()
            rows, smallest = torch.arange(b, device=x.device).repeat_interleave(active), None
    values = ((params.w_enc.index_select(0, cols) * (x[rows] - params.b_dec)).sum(1) + params.b_enc[cols]).relu()
    return Kept(rows, cols, values, smallest)


def reconstruct(params: Params, kept: Kept, b: int) -> torch.Tensor:
    """``z D + b_dec`` from the kept pairs: (b, d)."""
    parts = kept.values[:, None] * params.atoms.index_select(0, kept.cols)
    if kept.smallest is None:  # TopK: each row's pairs are contiguous
        summed = parts.view(b, -1, parts.shape[1]).sum(1)
    else:
        summed = torch.zeros(b, parts.shape[1], device=parts.device, dtype=parts.dtype).index_add(0, kept.rows, parts)
    return summed + params.b_dec


def aux_loss(params: Params, x: torch.Tensor, dead: torch.Tensor, residual: torch.Tensor, auxk: int) -> torch.Tensor:
    """AuxK (Gao et al. sec. 2.4): the ``auxk`` largest ReLU'd pre-activations among the ``dead`` latents
    reconstruct the (detached) residual through their atoms; its squared error relative to the residual's energy
    (Gao et al. centre the residual: a batch of one sample would then divide by 0). Computed on the dead
    latents' rows only, so only they receive its gradient (and ``b_dec`` through the encoder's input)."""
    index = dead.nonzero().squeeze(1)
    w_enc = params.w_enc[index]
    pre = torch.addmm(params.b_enc[index] - w_enc @ params.b_dec, x, w_enc.T)
    top = torch.topk(pre, min(auxk, index.numel()), dim=1)
    codes = torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())
    residual = residual.detach()
    return (codes @ params.atoms[index] - residual).pow(2).sum() / residual.pow(2).sum().clamp_min(_EPS)


class Adam:
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and update, in place on leaf tensors: featflow's own
    because constructing any torch.optim optimizer imports torch._dynamo (about 2 CPU seconds per process, a
    fifth of the default run's whole fit); the tests check it step for step against torch.optim.Adam."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.params, self.lr, self.betas, self.eps, self.steps = params, lr, betas, 1e-8, 0
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for param, first, second in zip(self.params, self.first, self.second, strict=True):
            first.lerp_(param.grad, 1 - beta1)
            second.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
            denominator = (second.sqrt() / math.sqrt(correction2)).add_(self.eps)
            param.addcdiv_(first, denominator, value=-self.lr / correction1)


def _unit_atoms_step(params: Params, optimizer: Adam) -> None:
    """Gao et al.: drop the decoder gradient's component along each atom, step, renormalize the atoms."""
    atoms = params.atoms
    grad = atoms.grad
    grad -= (grad * atoms).sum(1, keepdim=True) * atoms.detach()
    optimizer.step()
    with torch.no_grad():
        atoms /= atoms.norm(dim=1, keepdim=True).clamp_min(_EPS)


def train(
    params: Params, rows: Rows, topk: TopKSpec, *, stats: Moments, generator: torch.Generator | None
) -> torch.Tensor:
    """Adam over ``topk.epochs`` passes of ``topk.batch_size`` rows (shuffled blocks from ``generator``), in place
    on ``params``; logs loss, FVU and dead latents per epoch. Returns the steps since each latent last fired.

    The loss is the batch's squared error over its rows' share of the data's variance (the FVU of the batch
    against the data set's variance; Gao et al. divide by the batch's own variance, which a small last batch
    makes tiny) plus ``aux_coef`` times AuxK."""
    k, d = params.atoms.shape
    auxk = topk.auxk or max(1, d // 2)
    optimizer = Adam(params.tensors(), lr=topk.lr)
    idle = torch.zeros(k, dtype=torch.long, device=params.atoms.device)
    for epoch in range(topk.epochs):
        totals = torch.zeros(2, dtype=torch.float64, device=params.atoms.device)  # loss, error
        steps = seen = 0
        for batch in rows.batches(topk.batch_size, generator=generator):
            x = batch * stats.scale
            kept = keep(params, x, active=topk.active, batch_topk=topk.batch_topk)
            residual = x - reconstruct(params, kept, x.shape[0])
            error = residual.pow(2).sum()
            loss = error / (x.shape[0] * stats.row_variance)
            dead = idle >= topk.dead_steps
            if topk.aux_coef > 0 and bool(dead.any()):
                loss = loss + topk.aux_coef * aux_loss(params, x, dead, residual, auxk)
            optimizer.zero_grad()
            loss.backward()
            _unit_atoms_step(params, optimizer)
            idle = torch.where(_fired(kept, k) > 0, 0, idle + 1)
            totals += torch.stack([loss.detach(), error.detach()]).double()
            steps, seen = steps + 1, seen + x.shape[0]
        loss_sum, error_sum = totals.tolist()
        n_dead = int((idle >= topk.dead_steps).sum())
        log.info(
            f"topk: epoch {epoch + 1}/{topk.epochs}, loss {loss_sum / max(steps, 1):.4f}, "
            f"FVU {error_sum / max(seen * stats.row_variance, _EPS):.4f}, dead latents {n_dead} of {k}"
        )
    return idle


def _fired(kept: Kept, k: int) -> torch.Tensor:
    """(k,) how many of the batch's samples each latent is active in."""
    return torch.zeros(k, device=kept.values.device).index_add_(0, kept.cols, (kept.values > 0).float())


@dataclass(frozen=True)
class FitStats:
    """One pass over the training rows with the final weights: FVU, latents that never fired, and BatchTopK's
    threshold (the mean of each batch's smallest kept pre-activation; None for TopK), in scaled units."""

    fvu: float
    dead: int
    threshold: float | None


def final_pass(params: Params, rows: Rows, topk: TopKSpec, *, stats: Moments) -> FitStats:
    """FVU against the rows' variance, never-firing latents and BatchTopK's threshold."""
    k = params.atoms.shape[0]
    fired = torch.zeros(k, dtype=torch.bool, device=params.atoms.device)
    error, smallest, batches = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in rows.batches(topk.batch_size):
            x = batch * stats.scale
            kept = keep(params, x, active=topk.active, batch_topk=topk.batch_topk)
            if kept.smallest is not None:
                smallest += float(kept.smallest)
            error += float((x - reconstruct(params, kept, x.shape[0])).double().pow(2).sum())
            fired |= _fired(kept, k) > 0
            batches += 1
    threshold = smallest / batches if topk.batch_topk else None
    return FitStats(error / (stats.rows * stats.row_variance), int((~fired).sum()), threshold)


def fold(params: Params, *, active: int, scale: float, threshold: float | None) -> TopKDictionary:
    """The dictionary in the layer's units: pre-activations and codes divide by ``scale`` (positive homogeneity of
    ReLU and TopK), so ``b_enc``, ``b_dec`` and the threshold do; atoms and encoder weights are unchanged."""
    return TopKDictionary(
        atoms=params.atoms.detach().clone(),
        w_enc=params.w_enc.detach().clone(),
        b_enc=params.b_enc.detach() / scale,
        b_dec=params.b_dec.detach() / scale,
        active=active,
        threshold=None if threshold is None else float(np.float32(threshold / scale)),
        scale=float(np.float32(scale)),
    )


def _check(topk: TopKSpec, k: int) -> None:
    if topk.active > k:
        raise ValueError(
            f"complexity.dictionary.topk.active {topk.active} exceeds complexity.dictionary.k {k}; lower it"
        )


def _fit(rows: Rows, spec: DictionarySpec, ctx: FitContext) -> TopKDictionary:
    """Moments pass, Adam epochs, final pass (FVU, dead latents, BatchTopK's threshold), folded to the layer's
    units."""
    topk = spec.topk
    _check(topk, ctx.k)
    stats = moments(rows)
    params = init_params(ctx.k, stats.mean * stats.scale, ctx.generator)
    train(params, rows, topk, stats=stats, generator=ctx.generator)
    final = final_pass(params, rows, topk, stats=stats)
    kind = "BatchTopK" if topk.batch_topk else "TopK"
    log.info(
        f"topk ({ctx.layer}): {kind}, k={ctx.k}, active {topk.active}, FVU {final.fvu:.4f} on the {stats.rows} "
        f"training rows, {final.dead} latents never active"
    )
    return fold(params, active=topk.active, scale=stats.scale, threshold=final.threshold)


def _load(arrays: dict[str, np.ndarray], spec: DictionarySpec, device: torch.device) -> TopKDictionary:
    """Rebuild from ``state()``'s arrays alone: they hold ``active`` and, for BatchTopK, the threshold, so the
    encoder is the trained one whatever part of ``complexity.dictionary`` a job's spec carries (``spec`` unused)."""

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(arrays[name])).float().to(device)

    return TopKDictionary(
        atoms=tensor("atoms"),
        w_enc=tensor("W_enc"),
        b_enc=tensor("b_enc"),
        b_dec=tensor("b_dec"),
        active=int(arrays["active"]),
        threshold=float(arrays["threshold"]) if "threshold" in arrays else None,
        scale=float(arrays["scale"]),
    )


METHOD = Method(
    "topk",
    fit=_fit,
    load=_load,
    summary="TopK sparse autoencoder (Gao et al. 2024), z = TopK(ReLU(W_enc (a - b_dec) + b_enc)), a ~ z D + b_dec",
)
