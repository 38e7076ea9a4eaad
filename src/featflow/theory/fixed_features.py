"""Fixed-feature baselines on the same network (SPEC 4.2): random features, the NTK linearization at
initialization, and an RBF kernel SVM (scikit-learn).

Random features freeze W and b at the symmetric initialization and train a (+ output bias) with the network's
loss and GD. The NTK model is the first-order expansion of g around the initialization, g0 = 0:
f(x) = sum_i [da_i sigma(z_i) + a0_i sigma'(z_i) (<dw_i, x> + db_i)] + c, linear in the features
(sigma(z), a0 sigma'(z) x, a0 sigma'(z)) of dimension 2m (d + 2). Full-batch GD on its weights theta is run in
the dual: theta = Phi^T beta stays in the span of the training features, so the kernel
K = S S^T + (S' diag(a0^2) S'^T) * (X X^T + 1) (n x n) replaces the 2m (d + 2)-wide feature matrix. Written by
hand: no library ships these linearized two-layer models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.svm import SVC

from featflow.theory.two_layer import Params, TheorySpec, accuracy, hidden, hinge_grad, lipschitz_lr, train_linear

log = logging.getLogger(__name__)


def random_features(
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    lr_scale: float,
    steps: int,
    weight_decay: float,
    record: np.ndarray,
) -> np.ndarray:
    """Test accuracy (S, len(record)) of a trained on frozen first-layer features sigma(W0 x + b0)."""
    h, _ = hidden(init, x)
    h_test, _ = hidden(init, x_test)
    lr = lipschitz_lr(h) * lr_scale
    return train_linear(h, h_test, y, y_test, init.a, init.c, lr, steps, weight_decay, record)[2]


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
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    lr_scale: float,
    steps: int,
    weight_decay: float,
    record: np.ndarray,
) -> np.ndarray:
    """Test accuracy (S, len(record)) of the linearized network trained by GD (in the dual) from theta = 0.

    GD on theta: theta <- (1 - lr wd) theta - lr Phi^T g, so with theta = Phi^T beta:
    beta <- (1 - lr wd) beta - lr g, and f = K beta. The step size is lr_scale / lambda_max(K / N).
    """
    kern, kern_test = ntk_kernels(init, x.astype(np.float32), x_test.astype(np.float32))
    n = x.shape[0]
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


def rbf_svm(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, C: float) -> float:
    """Test accuracy of scikit-learn's SVC with an RBF kernel (gamma = 'scale')."""
    return float(SVC(kernel="rbf", C=C, gamma="scale").fit(x, y).score(x_test, y_test))


@dataclass
class BaselineRun:
    """Curves of the fixed-feature models on the network's global step grid, and the SVM's accuracy."""

    steps: np.ndarray  # (E,)
    random_features: np.ndarray  # (S, E)
    ntk: np.ndarray  # (S, E)
    svm: float


def train_baselines(
    spec: TheorySpec,
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    grid: np.ndarray,
) -> BaselineRun:
    """Random features and NTK trained for grid[-1] small steps from ``init``; the SVM once."""
    steps = int(grid[-1])
    args = (x, y, x_test, y_test, spec.lr_scale, steps, spec.weight_decay, grid)
    rf = random_features(init, *args)
    tangent = ntk(init, *args)
    svm = rbf_svm(x, y, x_test, y_test, spec.svm_C)
    log.info(
        "baselines: random features %s, NTK %s, RBF SVM %.3f", np.round(rf[:, -1], 3), np.round(tangent[:, -1], 3), svm
    )
    return BaselineRun(grid, rf, tangent, svm)
