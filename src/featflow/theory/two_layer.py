"""The two-layer truncated-ReLU network of Shi, Wei & Liang and its training schedule (SPEC 4.2).

g(x) = sum_i a_i sigma(<w_i, x> + b_i) + c, sigma(z) = min(1, max(z, 0)), 2m hidden units with the symmetric
initialization (g = 0 at step 0). Loss: mean hinge loss max(0, 1 - y g(x)) on the Gaussian-smoothed activation
E_xi sigma(z + xi), xi ~ N(0, s^2) (closed form with the normal CDF), plus l2 on a and W. Schedule: two aggressive
full-batch steps whose weight decay 1/(2 eta) replaces W by -eta grad_W, then small full-batch steps; by default W
and b are frozen after step 2 (``feature_lr_scale = 0``) and only a and the output bias c keep training, which is
what reaches ~100% (SPEC 4.2: moving the tiny biases afterwards knocks the learned units out of place).
Seeds are vectorized: every array carries a leading seed axis S. Written by hand (numpy): no library ships this
network or schedule.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from featflow.config import Spec

log = logging.getLogger(__name__)

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class TheorySpec(Spec):
    """The ``theory:`` config section (src/featflow/schemas/theory.schema.yaml documents every key)."""

    structured: str = "shi"
    unstructured: str = "shi-flat"
    m: int = 100
    seeds: int = 3
    eta1: float = 1e-4
    eta2: float = 2.0
    smooth1: float | None = None
    smooth2: float | None = None
    sigma_a: float | None = None
    steps: int | None = 300
    lr: float | None = None
    lr_scale: float = 20.0
    baseline_lr_scale: float = 1.0
    baseline_C_range: tuple[float, float] = (1e-3, 1e3)
    baseline_C_points: int = 13
    baseline_gamma_range: tuple[float, float] = (0.01, 10.0)
    baseline_gamma_points: int = 5
    baseline_folds: int = 3
    feature_lr_scale: float = 0.0
    weight_decay: float = 1e-4
    eval_every: int = 10
    snapshot_seeds: int = 1

    def __post_init__(self) -> None:
        if self.structured == self.unstructured:
            raise ValueError(f"theory.unstructured: '{self.unstructured}' must differ from theory.structured")
        for key in ("baseline_C_range", "baseline_gamma_range"):
            low, high = getattr(self, key)
            if not 0 < low <= high:
                raise ValueError(f"theory.{key}: {[low, high]}, expected [low, high] with 0 < low <= high")
        for key in ("m", "seeds", "eval_every", "snapshot_seeds"):
            if getattr(self, key) < 1:
                raise ValueError(f"theory.{key}: {getattr(self, key)} must be >= 1")

    def small_steps(self) -> int:
        """T: the number of small steps after step 2 (default m^{4/3}, the theory's choice)."""
        return int(self.steps) if self.steps is not None else int(round(self.m ** (4.0 / 3.0)))


@dataclass
class Params:
    """Network parameters for S seeds: W (S, 2m, d), b (S, 2m), a (S, 2m), c (S,) output bias."""

    W: np.ndarray
    b: np.ndarray
    a: np.ndarray
    c: np.ndarray

    def copy(self) -> Params:
        return Params(*(x.copy() for x in dataclasses.astuple(self)))


def sigma(z: np.ndarray) -> np.ndarray:
    """The truncated ReLU min(1, max(z, 0))."""
    return np.clip(z, 0.0, 1.0)


def _relu_smooth(z: np.ndarray, s: float) -> np.ndarray:
    """E relu(z + xi), xi ~ N(0, s^2) = z Phi(z / s) + s phi(z / s)."""
    u = z / s
    return z * ndtr(u) + s * _INV_SQRT_2PI * np.exp(-0.5 * u * u)


def smoothed(z: np.ndarray, s: float | None) -> tuple[np.ndarray, np.ndarray]:
    """E_xi sigma(z + xi) and its derivative in z, xi ~ N(0, s^2); s = None or 0 is the plain activation.

    sigma = relu(z) - relu(z - 1), so the value is R(z) - R(z - 1) and the derivative Phi(z/s) - Phi((z-1)/s).
    """
    if not s:
        return sigma(z), ((z > 0) & (z < 1)).astype(z.dtype)
    value = _relu_smooth(z, s) - _relu_smooth(z - 1.0, s)
    slope = ndtr(z / s) - ndtr((z - 1.0) / s)
    return value.astype(z.dtype), slope.astype(z.dtype)


def init_params(m: int, d: int, k: int, sigma_a: float, seeds: int, rng: np.random.Generator) -> Params:
    """Symmetric initialization (SPEC 4.2) for ``seeds`` independent networks.

    w_i ~ N(0, (1/k)^2 I), b_i ~ N(0, (1/k^2)^2), a_i ~ N(0, sigma_a^2) for i <= m; then w_{m+i} = w_i,
    b_{m+i} = b_i, a_{m+i} = -a_i so that g = 0 at initialization.
    """
    w = rng.normal(0.0, 1.0 / k, size=(seeds, m, d))
    b = rng.normal(0.0, 1.0 / k**2, size=(seeds, m))
    a = rng.normal(0.0, sigma_a, size=(seeds, m))
    return Params(
        W=np.concatenate([w, w], axis=1),
        b=np.concatenate([b, b], axis=1),
        a=np.concatenate([a, -a], axis=1),
        c=np.zeros(seeds),
    )


def hidden(params: Params, x: np.ndarray, s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations and their slopes, each (S, N, 2m), for inputs x (N, d)."""
    z = x @ params.W.transpose(0, 2, 1) + params.b[:, None, :]
    return smoothed(z, s)


def predict(params: Params, x: np.ndarray) -> np.ndarray:
    """g(x) for every seed: (S, N)."""
    h, _ = hidden(params, x)
    return np.einsum("snj,sj->sn", h, params.a) + params.c[:, None]


def hinge_grad(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/df of the mean hinge loss max(0, 1 - y f): (S, N)."""
    return np.where(y * f < 1.0, -y, 0.0) / y.shape[-1]


def gradients(params: Params, x: np.ndarray, y: np.ndarray, s: float | None) -> Params:
    """Gradients of the mean smoothed hinge loss (no regularization) in every parameter, for every seed."""
    h, slope = hidden(params, x, s)
    f = np.einsum("snj,sj->sn", h, params.a) + params.c[:, None]
    g = hinge_grad(f, y)  # (S, N)
    back = g[:, :, None] * slope * params.a[:, None, :]  # (S, N, 2m): dL/dz
    return Params(W=back.transpose(0, 2, 1) @ x, b=back.sum(axis=1), a=np.einsum("sn,snj->sj", g, h), c=g.sum(axis=1))


def aggressive_step(params: Params, x: np.ndarray, y: np.ndarray, eta: float, s: float | None) -> Params:
    """One of the two feature-learning steps: weight decay 1/(2 eta) on W makes W <- -eta grad_W.

    a, b and c stay at their initial values in these two steps: the step moves the first layer only, as in the
    theory's analysis (a moves by a negligible amount there).
    """
    grad = gradients(params, x, y, s)
    return Params(W=-eta * grad.W, b=params.b.copy(), a=params.a.copy(), c=params.c.copy())


def eval_grid(steps: int, every: int) -> np.ndarray:
    """Global step indices at which curves are recorded: 0, 1, 2, then every ``every`` small steps to 2 + T."""
    small = np.arange(every, steps + 1, every)
    if small.size == 0 or small[-1] != steps:
        small = np.append(small, steps)
    return np.concatenate([[0, 1, 2], 2 + small]).astype(np.int64)


def accuracy(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fraction of sign(f) == y per seed, f (S, N), y (N,) in {-1, +1}; f = 0 counts as -1."""
    return (np.where(f > 0, 1.0, -1.0) == y).mean(axis=-1)


def train_linear(
    h: np.ndarray,
    h_test: np.ndarray,
    y: np.ndarray,
    y_test: np.ndarray,
    a: np.ndarray,
    c: np.ndarray,
    *,
    lr: np.ndarray,
    steps: int,
    weight_decay: float,
    record: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch GD on the l2-regularized mean hinge loss of f = h a + c over fixed features.

    Parameters
    ----------
    h, h_test : (S, N, p) and (S, N_test, p) features; y, y_test : (N,), (N_test,) labels in {-1, +1}.
    a, c : (S, p), (S,) starting weights and output bias; lr : (S,) step sizes.
    record : local step counts (0..steps) after which the test accuracy is recorded.

    Returns (a, c, test accuracy (S, len(record))).
    """
    a, c = a.copy(), c.copy()
    curve = np.empty((a.shape[0], len(record)))
    slots = {int(t): i for i, t in enumerate(record)}
    for t in range(steps + 1):
        if t in slots:
            curve[:, slots[t]] = accuracy(np.einsum("snp,sp->sn", h_test, a) + c[:, None], y_test)
        if t == steps:
            break
        g = hinge_grad(np.einsum("snp,sp->sn", h, a) + c[:, None], y)
        a -= lr[:, None] * (np.einsum("sn,snp->sp", g, h) + weight_decay * a)
        c -= lr * g.sum(axis=1)
    return a, c, curve


def lipschitz_lr(features: np.ndarray) -> np.ndarray:
    """1 / lambda_max(F^T F / N) per seed for features F (S, N, p) with an appended constant (the output bias):
    the step size at which full-batch GD on a linear model over F is stable (largest eigenvalue by ``eigvalsh``
    of the smaller Gram side)."""
    n = features.shape[1]
    f1 = np.concatenate([features, np.ones(features.shape[:2] + (1,), features.dtype)], axis=2)
    gram = np.einsum("snp,snq->spq", f1, f1) / n if f1.shape[2] <= n else np.einsum("snp,smp->snm", f1, f1) / n
    return 1.0 / np.linalg.eigvalsh(gram)[:, -1]


@dataclass
class NetworkRun:
    """Result of :func:`train_network`: curves on the global step grid and parameter snapshots."""

    steps: np.ndarray  # (E,) global step indices
    test_acc: np.ndarray  # (S, E)
    train_acc: np.ndarray  # (S,) at the end
    snapshots: dict[str, Params]  # "init", "step1", "step2", "end" (all seeds)


def schedule_constants(spec: TheorySpec, k: int, sigma2: float, gamma_design: float) -> dict[str, float]:
    """The schedule's numbers: step sizes eta1 = spec.eta1 k^2 and eta2 = spec.eta2 k^2 (the product of a ~
    sigma~^2 / (gamma k^2) and the gradient ~ gamma / sigma~^2 per pattern is 1/k^2, so these are free of D),
    smoothing widths (1/(2k) < 1/k, then k^{-3/2}) and sigma_a = sigma~^2 / (gamma k^2)."""
    if gamma_design <= 0:
        raise ValueError(f"theory: gamma = {gamma_design} must be > 0 to set sigma_a; set theory.sigma_a")
    return {
        "eta1": spec.eta1 * k**2,
        "eta2": spec.eta2 * k**2,
        "smooth1": spec.smooth1 if spec.smooth1 is not None else 1.0 / (2 * k),
        "smooth2": spec.smooth2 if spec.smooth2 is not None else k**-1.5,
        "sigma_a": spec.sigma_a if spec.sigma_a is not None else sigma2 / (gamma_design * k**2),
    }


def train_network(
    spec: TheorySpec,
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    consts: dict[str, float],
) -> NetworkRun:
    """Two aggressive steps from ``init``, then T small steps (W and b frozen unless ``feature_lr_scale`` > 0).

    x (N, d), y (N,) in {-1, +1}; every seed of ``init`` trains at once.
    """
    steps = spec.small_steps()
    grid = eval_grid(steps, spec.eval_every)
    params = init.copy()
    snaps = {"init": init.copy()}
    params = aggressive_step(params, x, y, consts["eta1"], consts["smooth1"])
    snaps["step1"] = params.copy()
    params = aggressive_step(params, x, y, consts["eta2"], consts["smooth2"])
    snaps["step2"] = params.copy()
    head = [accuracy(predict(snaps[name], x_test), y_test) for name in ("init", "step1", "step2")]
    h, _ = hidden(params, x)
    lr = spec.lr if spec.lr is not None else lipschitz_lr(h) * spec.lr_scale
    lr = np.broadcast_to(np.asarray(lr, dtype=float), (spec.seeds,)).copy()
    record = grid[3:] - 2
    if spec.feature_lr_scale == 0:
        h_test, _ = hidden(params, x_test)
        a, c, tail = train_linear(
            h, h_test, y, y_test, params.a, params.c, lr=lr, steps=steps, weight_decay=spec.weight_decay, record=record
        )
        params = Params(params.W, params.b, a, c)
    else:
        params, tail = _train_all(params, x, y, x_test, y_test, lr=lr, steps=steps, spec=spec, record=record)
    snaps["end"] = params
    log.info("network: test accuracy after step 2 %s, at the end %s", np.round(head[2], 3), np.round(tail[:, -1], 3))
    return NetworkRun(grid, np.column_stack([*head, tail]), accuracy(predict(params, x), y), snaps)


def _train_all(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    lr: np.ndarray,
    steps: int,
    spec: TheorySpec,
    record: np.ndarray,
) -> tuple[Params, np.ndarray]:
    """Small steps on every parameter: a and c at ``lr``, W and b at ``lr * feature_lr_scale``; l2 on a and W."""
    params = params.copy()
    curve = np.empty((spec.seeds, len(record)))
    slots = {int(t): i for i, t in enumerate(record)}
    slow = lr[:, None] * spec.feature_lr_scale
    for t in range(steps + 1):
        if t in slots:
            curve[:, slots[t]] = accuracy(predict(params, x_test), y_test)
        if t == steps:
            break
        grad = gradients(params, x, y, None)
        params.a -= lr[:, None] * (grad.a + spec.weight_decay * params.a)
        params.c -= lr * grad.c
        params.W -= slow[:, :, None] * (grad.W + spec.weight_decay * params.W)
        params.b -= slow * grad.b
    return params, curve
