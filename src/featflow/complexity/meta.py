"""Meta-features (Fel et al. 2024, Fig. 2): the dictionary's atoms grouped by k-means into meta-features, each
shown by its top images, the gallery sorted by the meta-feature's mean complexity K.

k-means (scikit-learn, ``n_init`` restarts, seeded) runs on the unit-norm atoms, so the Euclidean distance is a
function of the cosine between atoms (dead, all-zero atoms are left out, label -1). A meta-feature's activation on an
image is the sum of its atoms' codes; its top images are the split's images with the largest sums. Written: a table
(meta-feature -> atoms, their number, mean and spread of K) and the gallery figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from featflow import store
from featflow.complexity.report import split_images
from featflow.complexity.spec import MetaSpec

log = logging.getLogger(__name__)

Path_ = str | Path


def cluster_atoms(atoms: np.ndarray, n_clusters: int, seed: int, n_init: int = 10) -> np.ndarray:
    """k-means labels (k,) of the unit-normalized atoms (k, d), clusters numbered 0..c-1; a dead (zero) atom -1.
    At most as many clusters as live atoms."""
    from sklearn.cluster import KMeans

    norms = np.linalg.norm(atoms, axis=1)
    live = norms > 0
    if n_clusters < 1 or not live.any():
        raise ValueError(
            f"complexity.meta_features.n_clusters {n_clusters}: needs >= 1 and a dictionary with live atoms"
        )
    c = min(n_clusters, int(live.sum()))
    if c < n_clusters:
        log.warning("meta-features: %d clusters asked, only %d live atoms; using %d", n_clusters, c, c)
    km = KMeans(n_clusters=c, n_init=n_init, random_state=seed).fit(atoms[live] / norms[live, None])
    labels = np.full(len(atoms), -1, dtype=np.int64)
    labels[live] = km.labels_
    return labels


def by_complexity(labels: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Labels renumbered so that meta-feature 0 has the lowest mean K (NaN K left out of the mean; a cluster
    without any K last); -1 stays -1."""
    c = int(labels.max()) + 1
    member = labels[:, None] == np.arange(c)[None, :]
    valid = member & np.isfinite(complexity)[:, None]
    sums = np.where(valid, np.nan_to_num(complexity)[:, None], 0.0).sum(0)
    means = np.where(valid.any(0), sums / np.maximum(valid.sum(0), 1), np.inf)
    rank = np.empty(c, dtype=np.int64)
    rank[np.argsort(means, kind="stable")] = np.arange(c)
    return np.where(labels >= 0, rank[np.maximum(labels, 0)], -1)


def meta_table(labels: np.ndarray, complexity: np.ndarray) -> pd.DataFrame:
    """One row per meta-feature (labels from :func:`by_complexity`): its atoms, their number, mean and std of K."""
    frame = pd.DataFrame({"meta_feature": labels, "atom": np.arange(len(labels)), "K": complexity})
    frame = frame[frame["meta_feature"] >= 0]
    groups = frame.groupby("meta_feature")
    return pd.DataFrame(
        {
            "meta_feature": groups.size().index,
            "n_atoms": groups.size().to_numpy(),
            "mean_K": groups["K"].mean().to_numpy(),
            "std_K": groups["K"].std(ddof=0).to_numpy(),
            "atoms": groups["atom"].agg(lambda a: " ".join(map(str, a))).to_numpy(),
        }
    )


def top_meta_rows(codes_path: Path_, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, sums), each (c, n): per meta-feature the ``n`` code rows with the largest sum of its atoms' codes,
    largest first; one pass in chunks (memory independent of the number of images)."""
    c = int(labels.max()) + 1
    member = (labels[:, None] == np.arange(c)[None, :]).astype(np.float64)
    best, ids = np.zeros((c, 0)), np.zeros((c, 0), dtype=np.int64)
    for span, (chunk,) in store.iter_rows([(codes_path, "complexity-codes", "codes")]):
        values = np.concatenate([best, (chunk @ member).T], axis=1)
        ids = np.concatenate([ids, np.broadcast_to(np.arange(span.start, span.stop), (c, len(chunk)))], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, :n]
        best, ids = np.take_along_axis(values, order, 1), np.take_along_axis(ids, order, 1)
    return ids, best


def run_meta_features(
    spec: MetaSpec,
    *,
    split: str,
    dict_path: Path_,
    vinfo_path: Path_,
    codes_path: Path_,
    acts_path: Path_,
    data_path: Path_,
    table: Path_,
    figure: Path_,
    seed: int,
) -> pd.DataFrame:
    """Cluster the atoms into meta-features, write the table (CSV) and the complexity-sorted gallery."""
    from featflow.plots.pictures import meta_feature_gallery

    atoms = store.read_h5(dict_path, "complexity-dictionary")["atoms"]
    complexity = store.read_h5(vinfo_path, "complexity-vinfo")["complexity"]
    labels = by_complexity(cluster_atoms(atoms, spec.n_clusters, seed, spec.n_init), complexity)
    frame = meta_table(labels, complexity)
    top, sums = top_meta_rows(codes_path, labels, spec.top_images)
    (data_rows,) = store.read_rows(acts_path, "activations", ["indices"], top)
    images = split_images(data_path, split, data_rows.reshape(-1))
    images = images.reshape(*data_rows.shape, *images.shape[1:])
    frame["top_rows"] = [" ".join(map(str, r)) for r in data_rows]
    store.write_table(frame, table)
    numbers = {
        "meta-features": f"{len(frame)} k-means clusters of {int((labels >= 0).sum())} atoms (seed {seed})",
        "mean K, simplest to most complex": ", ".join(f"{k:.3f}" for k in frame["mean_K"]),
        "atoms per meta-feature": ", ".join(map(str, frame["n_atoms"])),
    }
    log.info("meta-features: %s", numbers)
    fig = meta_feature_gallery(images, frame["mean_K"].to_numpy(), frame["n_atoms"].to_numpy(), sums)
    store.save_figure(fig, figure, numbers)
    return frame
