"""Fixed-feature baselines on the same network (SPEC 4.2): random features, the NTK linearization at
initialization, and an RBF kernel SVM (scikit-learn).

Random features freeze W and b at the symmetric initialization and train a (+ output bias) with the network's
loss. Every model here is convex in its trained weights, so each is reported at its optimum, beside its GD curve at
a stable step size: scikit-learn's SVC with C (and the RBF kernel's gamma) chosen by stratified cross-validation on
the training set over a grid in units of the kernel's size (C trace(K)/n; the NTK's diagonal is ~1,000 where the
linear kernel's is ~1, so a fixed C grid regularizes them wholly differently). A choice at a grid edge is warned
about and recorded. A linear model on x is the reference a fixed-feature method should at least match.

The NTK model is the first-order expansion of g around the initialization, g0 = 0:
f(x) = sum_i [da_i sigma(z_i) + a0_i sigma'(z_i) (<dw_i, x> + db_i)] + c, linear in the features
(sigma(z), a0 sigma'(z) x, a0 sigma'(z)) of dimension 2m (d + 2). Full-batch GD on its weights theta is run in
the dual: theta = Phi^T beta stays in the span of the training features, so the kernel
K = S S^T + (S' diag(a0^2) S'^T) * (X X^T + 1) (n x n) replaces the 2m (d + 2)-wide feature matrix. Written by
hand: no library ships these linearized two-layer models (the SVMs on them are scikit-learn's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.model_selection import GridSearchCV, StratifiedKFold
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
    *,
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


@dataclass(frozen=True)
class Grid:
    """The cross-validated search of a convex model (SPEC 4.2): C trace(K)/n over ``C_scales`` (so the grid is
    scaled to each kernel's size), gamma over ``gammas`` x the 'scale' value 1/(d Var(x)) for the RBF kernel,
    ``folds``-fold stratified cross-validation on the training set."""

    C_scales: np.ndarray
    gammas: np.ndarray
    folds: int
    seed: int = 0

    @classmethod
    def from_spec(cls, spec: TheorySpec, seed: int = 0) -> Grid:
        """The grid of the ``theory.baseline_*`` keys (log-spaced ranges)."""
        return cls(
            C_scales=np.geomspace(*spec.baseline_C_range, spec.baseline_C_points),
            gammas=np.geomspace(*spec.baseline_gamma_range, spec.baseline_gamma_points),
            folds=spec.baseline_folds,
            seed=seed,
        )


@dataclass(frozen=True)
class Optimum:
    """A convex model at its cross-validated optimum, per seed: test accuracy and the chosen hyperparameters."""

    accuracy: np.ndarray  # (S,)
    C: np.ndarray  # (S,)
    C_scale: np.ndarray  # (S,) C trace(K)/n: the position on the grid
    gamma: np.ndarray  # (S,) RBF only (NaN otherwise)
    cv_accuracy: np.ndarray  # (S,)
    at_edge: np.ndarray  # (S,) bool: a chosen value sits at the edge of its grid (widen it)
    edge: np.ndarray  # (S,) str: which edges ("C high", "gamma low", ...; "" none)

    def record(self) -> dict[str, np.ndarray]:
        """The arrays written to the output file."""
        return {key: np.asarray(value) for key, value in vars(self).items() if key != "accuracy"}


def mean_diagonal(train: np.ndarray, kernel: str) -> float:
    """trace(K)/n of a kernel matrix (``precomputed``), of the Gram matrix of features (``linear``), or 1 (``rbf``)."""
    if kernel == "precomputed":
        return float(np.einsum("ii->", train) / train.shape[0])
    if kernel == "linear":
        return float(np.einsum("ij,ij->", train, train) / train.shape[0])
    return 1.0


def _kernel(train: np.ndarray, test: np.ndarray, kernel: str, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """(K_train (N, N), K_test (N_test, N)), precomputed: a kernel matrix as given, a linear kernel as the Gram
    matrix, the RBF kernel at ``gamma``. libsvm then solves the same SVC without its own kernel evaluations,
    several times faster at these sizes."""
    if kernel == "precomputed":
        return train, test
    if kernel == "linear":
        return train @ train.T, test @ train.T
    return np.exp(-gamma * cdist(train, train, "sqeuclidean")), np.exp(-gamma * cdist(test, train, "sqeuclidean"))


def _search(
    train: np.ndarray, test: np.ndarray, y: np.ndarray, y_test: np.ndarray, grid: Grid, *, kernel: str, name: str
) -> tuple[float, float, float, float, float, bool, str]:
    """One seed: (test accuracy, C, C trace(K)/n, gamma, CV accuracy, at an edge, which) of the cross-validated
    SVC; on a tie the smallest C, then the smallest gamma (scikit-learn's order over the grid {C, gamma})."""
    unit = mean_diagonal(train, kernel)
    Cs = grid.C_scales / unit
    gammas = grid.gammas / (train.shape[1] * train.var()) if kernel == "rbf" else np.array([np.nan])
    folds = StratifiedKFold(grid.folds, shuffle=True, random_state=grid.seed)
    svc = GridSearchCV(SVC(kernel="precomputed"), {"C": list(Cs)}, cv=folds, refit=False)
    scores = np.stack([svc.fit(_kernel(train, test, kernel, g)[0], y).cv_results_["mean_test_score"] for g in gammas])
    c_at, g_at = divmod(int(np.argmax(scores.T.ravel())), len(gammas))  # C-major: the first best as scikit-learn
    C, gamma = float(Cs[c_at]), float(gammas[g_at])
    k_train, k_test = _kernel(train, test, kernel, gamma)
    accuracy = float(SVC(kernel="precomputed", C=C).fit(k_train, y).score(k_test, y_test))
    at = {"C": (c_at, len(Cs)), "gamma": (g_at, len(gammas))} if kernel == "rbf" else {"C": (c_at, len(Cs))}
    edges = [key for key, (i, n) in at.items() if i in (0, n - 1)]
    which = ", ".join(f"{key} {'low' if at[key][0] == 0 else 'high'}" for key in edges)
    if edges:
        chosen = {"C": C, "gamma": gamma}
        log.warning(
            "%s: cross-validation chose %s at the edge of its grid (theory.baseline_%s_range): widen the range",
            name,
            ", ".join(f"{key} {chosen[key]:.3g}" for key in edges),
            "/".join(edges),
        )
    return accuracy, C, C * unit, gamma, float(scores[g_at, c_at]), bool(edges), which


def svm_optimum(
    train: np.ndarray,
    test: np.ndarray,
    y: np.ndarray,
    y_test: np.ndarray,
    grid: Grid,
    kernel: str = "linear",
    name: str = "model",
) -> Optimum:
    """Test accuracy (S,) at the minimizer of ``sum hinge(f) + ||a||^2 / (2C)`` of a model linear in fixed
    features (or in a kernel's feature space), C (and gamma for ``rbf``) chosen per seed by cross-validation on
    the training set.

    The loss is convex, so the optimum is solved for, not approached by GD: scikit-learn's SVC (libsvm, SMO on the
    dual; output bias unpenalized as in the GD). train, test : features (S, N, p), (S, N_test, p) for ``linear``
    and ``rbf``; kernels (S, N, N), (S, N_test, N) for ``precomputed`` (the NTK model's l2 is then on
    theta = Phi^T beta). A choice at the edge of a grid is logged as a warning and recorded.
    """
    rows = [
        _search(train[s].astype(np.float64), test[s].astype(np.float64), y, y_test, grid, kernel=kernel, name=name)
        for s in range(train.shape[0])
    ]
    acc, C, scale, gamma, cv, at_edge, edge = (np.array(column) for column in zip(*rows, strict=True))
    return Optimum(
        accuracy=acc, C=C, C_scale=scale, gamma=gamma, cv_accuracy=cv, at_edge=at_edge.astype(bool), edge=edge
    )


@dataclass
class BaselineRun:
    """GD curves of the fixed-feature models on the network's global step grid; every convex model (random
    features, NTK, linear on x, RBF SVM) at its cross-validated optimum."""

    steps: np.ndarray  # (E,)
    random_features: np.ndarray  # (S, E) GD curve
    ntk: np.ndarray  # (S, E) GD curve
    optima: dict[str, Optimum]  # random_features, ntk (S seeds), linear, rbf_svm (one: they do not use the init)


def train_baselines(
    spec: TheorySpec,
    init: Params,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    grid: np.ndarray,
    seed: int = 0,
) -> BaselineRun:
    """Fixed-feature models from ``init``: GD curves for grid[-1] small steps at ``baseline_lr_scale`` (stable:
    <= 1 / lambda_max), and their cross-validated convex optima; the linear model on x and the RBF SVM once."""
    steps = int(grid[-1])
    search = Grid.from_spec(spec, seed)
    h, _ = hidden(init, x)
    h_test, _ = hidden(init, x_test)
    rf = train_linear(
        h,
        h_test,
        y,
        y_test,
        init.a,
        init.c,
        lr=lipschitz_lr(h) * spec.baseline_lr_scale,
        steps=steps,
        weight_decay=spec.weight_decay,
        record=grid,
    )[2]
    kern, kern_test = ntk_kernels(init, x.astype(np.float32), x_test.astype(np.float32))
    tangent = ntk(
        kern,
        kern_test,
        y,
        y_test,
        lr_scale=spec.baseline_lr_scale,
        steps=steps,
        weight_decay=spec.weight_decay,
        record=grid,
    )
    optima = {
        "random_features": svm_optimum(h, h_test, y, y_test, search, name="random features"),
        "ntk": svm_optimum(kern, kern_test, y, y_test, search, kernel="precomputed", name="NTK"),
        "linear": svm_optimum(x[None], x_test[None], y, y_test, search, name="linear on x"),
        "rbf_svm": svm_optimum(x[None], x_test[None], y, y_test, search, kernel="rbf", name="RBF SVM"),
    }
    log.info(
        "baselines: random features GD %s; NTK GD %s; optima (accuracy, C trace(K)/n) %s",
        np.round(rf[:, -1], 3),
        np.round(tangent[:, -1], 3),
        {name: (np.round(o.accuracy, 3).tolist(), np.round(o.C_scale, 4).tolist()) for name, o in optima.items()},
    )
    return BaselineRun(grid, rf, tangent, optima)
