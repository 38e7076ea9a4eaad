"""Claims of Shi, Wei & Liang (ICLR 2022, feature learning in two-layer networks) and their readers: the networks'
and fixed-feature baselines' test accuracies (``network.h5``, ``baselines.h5``) and the alignment and probes of
the hidden neurons (``alignment.h5``), on the structured and the unstructured data set.

Kind of experiment: ``theory``, one (named after the structured data set); its replicates are the theory's own
initializations (``theory.seeds``, trained at once; the alignment for the first ``theory.snapshot_seeds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from featflow.claims.core import Claim, Source, Unit, binomial_ci
from featflow.claims.verdict import Reading, not_applicable

PAPER = "Shi, Wei & Liang 2022"
ALIGNED_SHARE = 0.5  # "most neurons"
NEAR_CHANCE = 0.05


def units(config: Mapping[str, Any], boot_seed: int) -> list[Unit]:
    """One unit per initialization seed of the theory run."""
    theory = config.get("theory")
    if not theory:
        return []
    structured, flat = theory["structured"], theory["unstructured"]
    files = {
        "network": f"results/theory/{structured}/network.h5",
        "baselines": f"results/theory/{structured}/baselines.h5",
        "alignment": f"results/theory/{structured}/alignment.h5",
        "data": f"results/data/{structured}.h5",
        "flat_network": f"results/theory/{flat}/network.h5",
        "flat_data": f"results/data/{flat}.h5",
    }
    return [
        Unit("theory", structured, s, f"{structured}#{s}", files, boot_seed=boot_seed) for s in range(theory["seeds"])
    ]


def _network(src: Source, path: str) -> np.ndarray:
    net = src.h5(path, "theory_network")
    return np.asarray(net["optimum"] if "optimum" in net else net["test_acc"][:, -1], float)


def _n_test(src: Source, path: str) -> int:
    return int(src.shapes(path)["test/y"][0])


def _grid_edges(choices: Mapping[str, Any], seed: int) -> list[str]:
    """The baselines whose cross-validated choice (this seed's, or the single one) sits at a grid edge. The RBF
    kernel's low gamma edge is left out: as gamma -> 0 (C ~ 1/gamma) the RBF SVM tends to the linear SVM on x
    (Keerthi & Lin 2003), a baseline of its own."""
    edges = []
    for name, choice in choices.items():
        which = np.atleast_1d(choice.get("edge", np.where(np.atleast_1d(choice["at_edge"]), "edge", "")))
        sides = [side for side in str(which[min(seed, which.size - 1)]).split(", ") if side]
        sides = [side for side in sides if not (name == "rbf_svm" and side == "gamma low")]
        if sides:
            edges.append(f"{name} ({', '.join(sides)})")
    return edges


def read_network_vs_fixed(unit: Unit, src: Source) -> Reading:
    net = _network(src, unit.files["network"])[unit.seed]
    base = src.h5(unit.files["baselines"], "theory_baselines")
    fixed = {
        "random features": np.asarray(base["random_features_optimum"], float),
        "NTK": np.asarray(base["ntk_optimum"], float),
        "linear on x": np.atleast_1d(np.asarray(base["linear"], float)),
        "RBF SVM": np.atleast_1d(np.asarray(base["svm"], float)),
    }
    edges = _grid_edges(base.get("choice", {}), unit.seed)
    if edges:
        return not_applicable(
            f"{'; '.join(edges)}: a choice at the edge of its cross-validation grid, the baseline may be below its "
            "optimum (widen theory.baseline_C_range / baseline_gamma_range)"
        )
    per_seed = {name: float(acc[unit.seed] if acc.size > unit.seed else acc[0]) for name, acc in fixed.items()}
    best = max(per_seed, key=per_seed.get)
    n = _n_test(src, unit.files["data"])
    half = 1.96 * np.sqrt(net * (1 - net) / n + per_seed[best] * (1 - per_seed[best]) / n)
    diff = net - per_seed[best]
    return Reading(
        diff, diff - half, diff + half, reason=f"network {net:.3f} vs best fixed {best} {per_seed[best]:.3f}"
    )


def read_unstructured(unit: Unit, src: Source) -> Reading:
    acc = float(_network(src, unit.files["flat_network"])[unit.seed])
    low, high = binomial_ci(acc, _n_test(src, unit.files["flat_data"]))
    dist = abs(acc - 0.5)
    lo, hi = (0.0 if low <= 0.5 <= high else min(abs(low - 0.5), abs(high - 0.5))), max(abs(low - 0.5), abs(high - 0.5))
    return Reading(dist, lo, hi, reason=f"network {acc:.3f} on unstructured data")


def _alignment(unit: Unit, src: Source) -> dict[str, Any] | None:
    data = src.h5(unit.files["alignment"], "theory_alignment")
    return data if np.asarray(data["probe"]).shape[1] > unit.seed else None


def read_probe(unit: Unit, src: Source) -> Reading:
    data = _alignment(unit, src)
    if data is None:
        return not_applicable("this initialization has no probe (theory.snapshot_seeds)")
    step1, step2 = (float(x) for x in np.asarray(data["probe"])[:, unit.seed])
    n = _n_test(src, unit.files["data"])
    half = 1.96 * np.sqrt(step1 * (1 - step1) / n + step2 * (1 - step2) / n)
    diff = step2 - step1
    return Reading(diff, diff - half, diff + half, reason=f"probe {step1:.3f} after step 1, {step2:.3f} after step 2")


def read_aligned(unit: Unit, src: Source) -> Reading:
    data = _alignment(unit, src)
    frac = np.asarray(data["aligned_fraction"]) if data is not None else np.zeros((0, 0))
    if data is None or frac.shape[1] <= unit.seed:
        return not_applicable("this initialization was not mapped (theory.snapshot_seeds)")
    stages = [str(s) for s in data["stages"]]
    share = float(frac[stages.index("step2"), unit.seed])
    neurons = int(np.asarray(data["cosines"]).shape[-1])
    low, high = binomial_ci(share, neurons)
    mean_cos = float(np.asarray(data["cosines"])[stages.index("step2"), unit.seed].mean())
    return Reading(share, low, high, reason=f"{neurons} neurons, mean cosine {mean_cos:.3f} after step 2")


FIG = "results/theory/figures/"
CLAIMS = [
    Claim(
        id="network_beats_fixed_features",
        paper=PAPER,
        statistic="test accuracy of the two-layer network minus the best fixed-feature model (random features, NTK, "
        "linear, RBF SVM, each at its cross-validated optimum over a C grid in units of trace(K)/n) on structured "
        "data",
        expected="positive: the network near 100%, every fixed-feature model clearly lower (a linear rule tops out "
        "at 84.4%)",
        direction=">",
        null=0.0,
        null_text="0 (no better than fixed features)",
        precondition="every baseline's chosen C (and gamma) inside its grid",
        kind="theory",
        figure=FIG + "accuracy.png",
        read=read_network_vs_fixed,
    ),
    Claim(
        id="unstructured_at_chance",
        paper=PAPER,
        statistic="|test accuracy - 1/2| of the network on unstructured data (same labels, no structure)",
        expected="near 0: without structure no model learns",
        direction="<",
        null=NEAR_CHANCE,
        null_text=f"{NEAR_CHANCE:.0%} from chance",
        precondition="none",
        kind="theory",
        figure=FIG + "accuracy.png",
        read=read_unstructured,
    ),
    Claim(
        id="features_after_step2",
        paper=PAPER,
        statistic="linear probe accuracy on the hidden features after step 2 minus after step 1",
        expected="positive: about 52% after step 1, near 100% after step 2",
        direction=">",
        null=0.0,
        null_text="0",
        precondition="the initialization's probes stored (theory.snapshot_seeds)",
        kind="theory",
        figure=FIG + "alignment.png",
        read=read_probe,
    ),
    Claim(
        id="neurons_aligned",
        paper=PAPER,
        statistic="share of hidden neurons with cosine > 0.99 to an effective feature after step 2",
        expected="most neurons (all at the paper's scale)",
        direction=">",
        null=ALIGNED_SHARE,
        null_text="1/2",
        precondition="the initialization mapped (theory.snapshot_seeds)",
        kind="theory",
        figure=FIG + "alignment.png",
        read=read_aligned,
    ),
]
