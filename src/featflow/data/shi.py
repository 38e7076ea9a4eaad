"""The structured / unstructured data model of Shi, Wei & Liang (SPEC 4.1).

x~ = M phi~ with M (d x D) orthonormal columns and phi~ in {0, 1}^D; the label is the parity of the patterns in
the class-relevant set A. Structured family: with probability p0 the A-block is uniform (pure parity), else all
ones or all zeros with equal chance; patterns outside A are Bernoulli(p0). Unstructured: all Bernoulli(1/2).
Written by hand: no library ships this generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featflow import store
from featflow.config import ShiSpec


@dataclass(frozen=True)
class ShiSample:
    """One draw of the model: normalized inputs, labels in {-1, +1}, and the latent patterns."""

    x: np.ndarray  # (N, d) float32, normalized with the training statistics
    y: np.ndarray  # (N,) int64 in {-1, +1}
    phi: np.ndarray  # (N, D) float32 in {0, 1}


def dictionary(spec: ShiSpec, rng: np.random.Generator) -> np.ndarray:
    """M: (d, D) with orthonormal columns, from the QR factorization of a Gaussian matrix."""
    if spec.D > spec.d:
        raise ValueError(f"shi: D = {spec.D} must be <= d = {spec.d}")
    if spec.k > spec.D:
        raise ValueError(f"shi: k = {spec.k} must be <= D = {spec.D}")
    if spec.structured and spec.k % 2 == 0:
        # All-ones and all-zeros A-blocks must fall in opposite classes for balanced classes (A0) and gamma > 0.
        raise ValueError(f"shi.k = {spec.k}: the structured family needs an odd k")
    if not 0 < spec.p0 <= 0.5:
        raise ValueError(f"shi.p0 = {spec.p0}: expected a value in (0, 0.5]")
    q, r = np.linalg.qr(rng.standard_normal((spec.d, spec.D)))
    return q * np.sign(np.diag(r))[None, :]


def sample_patterns(spec: ShiSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """phi~: (n, D) in {0, 1}; the class-relevant set A is the first k patterns."""
    if not spec.structured:
        return (rng.random((n, spec.D)) < 0.5).astype(np.float32)
    phi = (rng.random((n, spec.D)) < spec.p0).astype(np.float32)
    uniform = rng.random(n) < spec.p0
    block = np.where(uniform[:, None], rng.random((n, spec.k)) < 0.5, (rng.random(n) < 0.5)[:, None])
    phi[:, : spec.k] = block
    return phi


def parity_labels(phi: np.ndarray, k: int) -> np.ndarray:
    """y = +1 when the number of active patterns in A (the first k) is odd, else -1."""
    return np.where(phi[:, :k].sum(axis=1) % 2 == 1, 1, -1).astype(np.int64)


def gamma(phi: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """gamma_i = E[y phi_i] - E[y] E[phi_i] for i in A (empirical), shape (k,)."""
    a = phi[:, :k]
    return (y[:, None] * a).mean(axis=0) - y.mean() * a.mean(axis=0)


def generate_shi(
    spec: ShiSpec, n_train: int, n_test: int, rng: np.random.Generator
) -> tuple[ShiSample, ShiSample, np.ndarray]:
    """Draw a train and a test sample; both are normalized with the training mean and sigma~.

    sigma~^2 = sum_i Var(x~_i), so the normalized training inputs have unit expected squared norm.
    Returns (train, test, M).
    """
    m = dictionary(spec, rng)
    phis = [sample_patterns(spec, n, rng) for n in (n_train, n_test)]
    raw = [phi @ m.T for phi in phis]
    mean = raw[0].mean(axis=0)
    sigma = np.sqrt(raw[0].var(axis=0).sum())
    samples = []
    for phi, xr in zip(phis, raw, strict=False):
        x = (xr - mean) / sigma
        if spec.noise > 0:
            x = x + rng.normal(0.0, spec.noise, size=x.shape)
        samples.append(ShiSample(x.astype(np.float32), parity_labels(phi, spec.k), phi))
    return samples[0], samples[1], m.astype(np.float32)


def design_gamma(spec: ShiSpec) -> float:
    """gamma of the structured member at ``spec.p0``: (1 - p0) / 2 (the uniform A-block contributes nothing,
    the all-ones block, of probability (1 - p0) / 2, has y = +1 and phi_i = 1)."""
    return (1.0 - spec.p0) / 2.0


def linear_ceiling(spec: ShiSpec) -> float:
    """Population accuracy of the best threshold rule on the count of active class-relevant patterns,
    ``y = +1 iff sum_{i in A} phi_i >= t`` (a linear rule on x along sum_A M_j), maximized over t (exact).

    Structured member: with probability p0 the A-block is uniform (count ~ Bin(k, 1/2), parity labels), else
    all ones (count k, label of k's parity) or all zeros (count 0, label -1) with equal chance; unstructured:
    count ~ Bin(k, 1/2). For k = 5, p0 = 1/2: 84.4% structured (SPEC 4.2's ceiling), 68.8% unstructured (a rule
    hinge-trained linear models cannot find there: E[y x] = 0 without structure).
    """
    from scipy.stats import binom

    counts = np.arange(spec.k + 1)
    uniform = binom.pmf(counts, spec.k, 0.5)
    if spec.structured:
        prob = spec.p0 * uniform
        prob[0] += (1.0 - spec.p0) / 2.0
        prob[spec.k] += (1.0 - spec.p0) / 2.0
    else:
        prob = uniform
    positive = counts % 2 == 1
    best = 0.0
    for t in range(spec.k + 2):
        predicted = counts >= t
        best = max(best, float(prob[predicted == positive].sum()))
    return best


@dataclass(frozen=True)
class ShiData:
    """A ``shi`` data set read back from ``results/data/{dataset}.h5``; labels in {-1, +1}."""

    train: ShiSample
    test: ShiSample
    M: np.ndarray  # (d, D)
    spec: ShiSpec

    @property
    def sigma2(self) -> float:
        """sigma~^2 = sum_i Var(x~_i) = sum_j Var(phi~_j) (M has orthonormal columns), on the training sample."""
        return float(self.train.phi.var(axis=0).sum())

    @property
    def effective_features(self) -> np.ndarray:
        """The two effective features +-sum_{j in A} M_j (Lemma 4), unit norm: (2, d)."""
        v = self.M[:, : self.spec.k].sum(axis=1)
        v = v / np.linalg.norm(v)
        return np.stack([v, -v])


def load_shi(path: str | Path) -> ShiData:
    """Read a data set of kind ``shi`` (written by the ``data`` rule): x, labels, patterns and M."""
    arrays = store.read_h5(path, "dataset")
    attrs = store.read_attrs(path, "dataset")
    config = attrs.get("config", {})
    if attrs.get("kind_of_data") != "shi" or "extra" not in arrays:
        raise ValueError(f"{path}: expected a data set of kind 'shi', found '{attrs.get('kind_of_data')}'")
    spec = ShiSpec.from_dict(config.get("shi", {}))
    splits = [
        ShiSample(arrays[s]["x"], np.where(arrays[s]["y"] > 0, 1, -1).astype(np.int64), arrays[s]["factors"])
        for s in ("train", "test")
    ]
    return ShiData(splits[0], splits[1], arrays["extra"]["M"], spec)
