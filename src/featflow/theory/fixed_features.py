"""Fixed-feature baselines on the same network (SPEC 4.2): random features, the NTK linearization at
initialization, and an RBF kernel SVM (scikit-learn).

Random features freeze W and b at the symmetric initialization and train a (+ output bias) with the network's
loss. Every model here is convex in its trained weights, so each is reported at its optimum (solved by an SVM
solver, weight decay cross-validated), beside its GD curve at a stable step size; a linear model on x is the
reference a fixed-feature method should at least match. The NTK model is the first-order expansion of g around
the initialization, g0 = 0: f(x) = sum_i [da_i sigma(z_i) + a0_i sigma'(z_i) (<dw_i, x> + db_i)] + c, linear in
the features
(sigma(z), a0 sigma'(z) x, a0 sigma'(z)) of dimension 2m (d + 2). Full-batch GD on its weights theta is run in
the dual: theta = Phi^T beta stays in the span of the training features, so the kernel
K = S S^T + (S' diag(a0^2) S'^T) * (X X^T + 1) (n x n) replaces the 2m (d + 2)-wide feature matrix. Written by
hand: no library ships these linearized two-layer models.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from featflow.theory.two_layer import Params, TheorySpec, accuracy, hidden, hinge_grad, lipschitz_lr, train_linear

log = logging.getLogger(__name__)


def ntk_kernels(init: Params, x: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tangent kernels at initialization (+1 for the output bias): train (S, N, N) and test-train (S, Nt, N)."""
    h, slope, h_test, slope_test = (v.astype(x.dtype) for v in (*hidden(init, x), *hidden(init, x_test)))
    a2 = (init.a[:, None, :] ** 2).astype(x.dtype)
    # In place, one seed at a time: at 10,000 samples each N x N float32 temporary is 400 MB.
    out = []
    for xa, ha, sa in ((x, h, slope), (x_test, h_test, slope_test)):
        inner = xa @ x.T
        inner += 1.0
        kern = ha @ h.transpose(0, 2, 1)
        for s in range(kern.shape[0]):
            tangent = (sa[s] * a2[s]) @ slope[s].T
            tangent *= inner
            kern[s] += tangent
        kern += 1.0
        out.append(kern)
    return out[0], out[1]


def ntk(
    kern: np.ndarray,
    kern_test: np.ndarray,
    y: np.ndarray,
    y_test: np.ndarray,
    lr_scale: float,
    steps: int,
    weight_decay: float,
    record: np.ndarray,
) -> np.ndarray:
    """Test accuracy (S, len(record)) of the linearized network trained by GD (in the dual) from theta = 0.

    kern, kern_test : tangent kernels from :func:`ntk_kernels`. GD on theta: theta <- (1 - lr wd) theta -
    lr Phi^T g, so with theta = Phi^T beta: beta <- (1 - lr wd) beta - lr g, and f = K beta. The step size is
    lr_scale / lambda_max(K / N).
    """
    n = kern.shape[1]
    lr = lr_scale * n / top_eigenvalue(kern)
    beta = np.zeros((kern.shape[0], n), dtype=np.float32)
    curve = np.empty((kern.shape[0], len(record)))
    slots = {int(t): i for i, t in enumerate(record)}
    for t in range(steps + 1):
        if t in slots:
            curve[:, slots[t]] = accuracy(np.einsum("smn,sn->sm", kern_test, beta), y_test)
        if t == steps:
            break
        g = hinge_grad(np.einsum("smn,sn->sm", kern, beta), y)
        beta = ((1.0 - lr[:, None] * weight_decay) * beta - lr[:, None] * g).astype(np.float32)
    return curve


def top_eigenvalue(kern: np.ndarray, iters: int = 50) -> np.ndarray:
    """Largest eigenvalue of each PSD matrix in (S, N, N) by power iteration (a full eigvalsh is O(N^3))."""
    v = np.ones(kern.shape[:2] + (1,), dtype=kern.dtype)
    for _ in range(iters):
        v = kern @ v
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    return (v.transpose(0, 2, 1) @ kern @ v)[:, 0, 0].astype(float)


def svm_C(n: int, weight_decay: float) -> float:
    """C of an SVM whose objective ``1/2 ||a||^2 + C sum_i hinge_i`` is N / wd times the branch's loss
    ``mean hinge + wd/2 ||a||^2``: C = 1 / (N wd)."""
    if weight_decay <= 0:
        raise ValueError(f"theory.weight_decay {weight_decay}: the convex optimum needs a weight decay > 0")
    return 1.0 / (n * weight_decay)


def hinge_optimum(
    train: np.ndarray,
    test: np.ndarray,
    y: np.ndarray,
    y_test: np.ndarray,
    weight_decays: Sequence[float],
    kernel: str = "linear",
) -> tuple[np.ndarray, np.ndarray]:
    """Test accuracy (S,) at the minimizer of ``mean hinge(f) + wd/2 ||a||^2`` of a model linear in fixed
    features, and the wd used (S,): chosen by 3-fold cross-validation on the training set of the first seed and
    reused for the others (the seeds share the data and differ only in their initialization; this keeps the
    cost to one search per model).

    The loss is convex in the weights, so the optimum is solved for instead of approached by GD: scikit-learn's
    SVC (libsvm, SMO on the dual; output bias unpenalized as in the GD) with C = 1 / (N wd).
    train, test : features (S, N, p), (S, N_test, p) for ``kernel="linear"``; tangent kernels (S, N, N) and
    (S, N_test, N) for ``kernel="precomputed"`` (the NTK model's l2 is then on theta = Phi^T beta).
    """
    n = train.shape[1]
    grid = {"C": [svm_C(n, wd) for wd in weight_decays]}
    search = GridSearchCV(SVC(kernel=kernel, tol=1e-4), grid, cv=3).fit(train[0].astype(np.float64), y)
    C = search.best_params_["C"]
    acc = [search.score(test[0].astype(np.float64), y_test)]
    for s in range(1, train.shape[0]):
        svm = SVC(C=C, kernel=kernel, tol=1e-4).fit(train[s].astype(np.float64), y)
        acc.append(svm.score(test[s].astype(np.float64), y_test))
    return np.array(acc), np.full(train.shape[0], 1.0 / (n * C))


def rbf_svm(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, C: float) -> float:
    """Test accuracy of scikit-learn's SVC with an RBF kernel (gamma = 'scale')."""
    return float(SVC(kernel="rbf", C=C, gamma="scale").fit(x, y).score(x_test, y_test))


@dataclass
class BaselineRun:
    """GD curves of the fixed-feature models on the network's global step grid; their convex optima (per
    seed) with the cross-validated weight decay; the linear model on x; the RBF SVM."""

    steps: np.ndarray  # (E,)
    random_features: np.ndarray  # (S, E) GD curve
    ntk: np.ndarray  # (S, E) GD curve
    random_features_optimum: np.ndarray  # (S,)
    ntk_optimum: np.ndarray  # (S,)
    linear: float  # linear model on the input x at its optimum
    svm: float
    weight_decay: dict[str, np.ndarray]  # model -> chosen wd (S,) or (1,)


def train_baselines(
    spec: TheorySpec,
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    grid: np.ndarray,
) -> BaselineRun:
    """Fixed-feature models from ``init``: GD curves for grid[-1] small steps at ``baseline_lr_scale`` (stable:
    <= 1 / lambda_max), and their convex optima; the linear model on x and the SVM once."""
    steps = int(grid[-1])
    wds = spec.baseline_weight_decays
    h, _ = hidden(init, x)
    h_test, _ = hidden(init, x_test)
    rf = train_linear(
        h, h_test, y, y_test, init.a, init.c, lipschitz_lr(h) * spec.baseline_lr_scale, steps, spec.weight_decay, grid
    )[2]
    rf_opt, rf_wd = hinge_optimum(h, h_test, y, y_test, wds)
    kern, kern_test = ntk_kernels(init, x.astype(np.float32), x_test.astype(np.float32))
    tangent = ntk(kern, kern_test, y, y_test, spec.baseline_lr_scale, steps, spec.weight_decay, grid)
    ntk_opt, ntk_wd = hinge_optimum(kern, kern_test, y, y_test, wds, kernel="precomputed")
    lin, lin_wd = hinge_optimum(x[None], x_test[None], y, y_test, wds)
    svm = rbf_svm(x, y, x_test, y_test, spec.svm_C)
    log.info(
        "baselines: random features GD %s, optimum %s; NTK GD %s, optimum %s; linear on x %.3f; RBF SVM %.3f",
        np.round(rf[:, -1], 3),
        np.round(rf_opt, 3),
        np.round(tangent[:, -1], 3),
        np.round(ntk_opt, 3),
        lin[0],
        svm,
    )
    chosen = {"random_features": rf_wd, "ntk": ntk_wd, "linear": lin_wd}
    return BaselineRun(grid, rf, tangent, rf_opt, ntk_opt, float(lin[0]), svm, chosen)
