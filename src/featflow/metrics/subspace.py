"""Angles between a vector and a subspace, orthogonal complements and the paper's trivial solutions, in numpy.

Shared by the critical-space figure (:mod:`featflow.ifv.figures`) and the claims readers: both read stored
bases from files and need no torch.
"""

from __future__ import annotations

import numpy as np


def angle_to_span(v: np.ndarray, basis: np.ndarray) -> float:
    """Angle (deg) between ``v`` (n_f,) and the span of the orthonormal columns of ``basis`` (n_f, d)."""
    v = np.asarray(v, float) / np.linalg.norm(v)
    cos = np.linalg.norm(np.asarray(basis, float).T @ v)
    return float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))


def complement(basis: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the orthogonal complement of the span of ``basis``'s orthonormal columns."""
    basis = np.asarray(basis, float)
    u, s, _ = np.linalg.svd(basis, full_matrices=True)
    rank = int((s > 1e-8).sum())
    return u[:, rank:]


def known_directions(n_f: int, excluded: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """The paper's trivial solutions of a classification layer: (1, ..., 1) (softmax translation invariance)
    and e_c for each class c the network never saw; name -> (n_f,)."""
    found = {"ones": np.ones(n_f)}
    found.update({f"e{c}": np.eye(n_f)[c] for c in excluded})
    return found
