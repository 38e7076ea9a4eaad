"""Claims of Reinbold & Westermann (feature visualization and its inverse) and their readers: the per-realization
table ``ifv.csv`` (angles of the predicted objective, the feature response and a random objective to the target;
stationarity), the re-optimization SSIMs (``reoptimize.h5``), the critical spaces (``critical_space.h5``), and,
for the preconditions, the realizations' attributes (aggregation, n_f) and the data set's classes.

Kind of experiment: ``fv`` (every ``fv:`` experiment), replicated over its model's training seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from featflow.claims.core import Claim, Source, Unit, bootstrap, chance_angle, median
from featflow.claims.verdict import Reading, not_applicable
from featflow.metrics.subspace import angle_to_span, complement
from featflow.seeds import SEP, replicates

PAPER = "Reinbold & Westermann"
MIN_STATIONARY = 5  # stationary realizations below which a median angle says little
MIN_REOPTIMIZED = 3


def units(config: Mapping[str, Any], boot_seed: int) -> list[Unit]:
    """Every replicate of every configured FV experiment, with the files its claims read."""
    found = []
    for exp in [n for n in config.get("fv") or {} if SEP not in n]:
        for seed, name in replicates(config, "fv", exp):
            spec = config["fv"][name]
            dataset = config["models"][spec["model"]]["dataset"]
            files = {
                leaf: f"results/fv/{name}/{leaf}.{ext}"
                for leaf, ext in (
                    ("ifv", "csv"),
                    ("critical_space", "h5"),
                    ("reoptimize", "h5"),
                    ("realizations", "h5"),
                )
            }
            found.append(
                Unit("fv", exp, seed, name, {**files, "data": f"results/data/{dataset}.h5"}, boot_seed=boot_seed)
            )
    return found


def logit_layer(unit: Unit, src: Source) -> str | None:
    """None when the FV experiment reads the classifier's logits (identity aggregation, one feature per class),
    else why not."""
    attrs = src.attrs(unit.files["realizations"], "fv_realizations")
    spec = attrs.get("config") or {}
    n_f = src.shapes(unit.files["realizations"], "fv_realizations")["responses"][1]
    classes = len(src.attrs(unit.files["data"]).get("classes", []))
    if spec.get("aggregation") != "identity" or n_f != classes:
        return (
            f"FV at layer {spec.get('layer')} ({spec.get('aggregation')} aggregation, n_f {n_f}), not at the "
            f"{classes} logits of the classifier"
        )
    return None


def _sparse(table: Any) -> Any:
    """The realizations of sparse targets: the paper samples its targets (290 sparse + 10 canonical on DenseNet),
    and a canonical target's geometry differs (a random non-negative vector is ~56 deg from a sparse target, ~78
    deg from e_i), so the angle claims are judged on the sparse ones (ifv_medians.csv has both kinds)."""
    return table[~table["canonical"].astype(bool)]


def _stationary(unit: Unit, src: Source) -> tuple[Any, str | None]:
    """The stationary realizations of sparse targets (``stationary``: FV's gradient test alone, which needs no
    IFV answer), or why too few are left."""
    table = _sparse(src.table(unit.files["ifv"]))
    kept = table[table["stationary"].astype(bool)]
    if len(kept) < MIN_STATIONARY:
        kinked = "label" in table and table["label"].astype(str).str.contains("piecewise").any()
        kink = " (piecewise-linear network: FV's optima sit on kinks)" if kinked else ""
        return kept, (
            f"IFV presupposes a stationary point: only {len(kept)} of {len(table)} sparse-target realizations "
            f"stationary{kink} (need {MIN_STATIONARY})"
        )
    return kept, None


def read_ifv_angle(unit: Unit, src: Source) -> Reading:
    kept, bad = _stationary(unit, src)
    if bad:
        return not_applicable(bad)
    value, low, high = bootstrap(median, (kept["angle_prediction"].to_numpy(),), unit.boot_seed)
    return Reading(value, low, high, reason=f"median over {len(kept)} stationary realizations (deg)")


def _median_gap(table: Any, first: str, second: str, names: tuple[str, str], seed: int) -> Reading:
    """Median over realizations of angle column ``first`` minus ``second``, bootstrapped over realizations."""
    value, low, high = bootstrap(median, (table[first].to_numpy() - table[second].to_numpy(),), seed)
    med = table[[first, second]].median()
    return Reading(value, low, high, reason=f"median {names[0]} {med[first]:.1f} vs {names[1]} {med[second]:.1f} deg")


def read_ifv_vs_response(unit: Unit, src: Source) -> Reading:
    kept, bad = _stationary(unit, src)
    if bad:
        return not_applicable(bad)
    return _median_gap(kept, "angle_prediction", "angle_response", ("IFV", "response"), unit.boot_seed)


def read_response_vs_random(unit: Unit, src: Source) -> Reading:
    table = _sparse(src.table(unit.files["ifv"]))
    if len(table) < MIN_STATIONARY:
        return not_applicable(f"only {len(table)} sparse-target realizations")
    return _median_gap(table, "angle_response", "angle_random", ("response", "random"), unit.boot_seed)


def read_ifv_within_c(unit: Unit, src: Source) -> Reading:
    off = logit_layer(unit, src)
    if off:
        return not_applicable(off)
    kept, bad = _stationary(unit, src)
    if bad:
        return not_applicable(bad)
    diff = kept["angle_prediction_full"].to_numpy() - kept["angle_prediction"].to_numpy()
    value, low, high = bootstrap(median, (diff,), unit.boot_seed)
    med = kept[["angle_prediction_full", "angle_prediction"]].median()
    return Reading(
        value,
        low,
        high,
        reason=f"median in R^n_f {med['angle_prediction_full']:.2f} vs within C {med['angle_prediction']:.2f} deg",
    )


def read_ssim(unit: Unit, src: Source) -> Reading:
    ssim = src.h5(unit.files["reoptimize"], "fv_reoptimize")["ssim"]
    pred, resp = np.asarray(ssim["prediction"], float), np.asarray(ssim["response"], float)
    if pred.size < MIN_REOPTIMIZED:
        return not_applicable(f"only {pred.size} realizations re-optimized (need {MIN_REOPTIMIZED})")
    value, low, high = bootstrap(median, (pred - resp,), unit.boot_seed)
    return Reading(
        value, low, high, reason=f"median SSIM {np.median(pred):.3f} under x* vs {np.median(resp):.3f} under y"
    )


def _space(unit: Unit, src: Source, dim: int) -> np.ndarray | None:
    """The basis (n_f, dim) of the critical space of dimension ``dim``, if Algorithm 1 found one."""
    data = src.h5(unit.files["critical_space"], "fv_critical_space")
    hits = np.flatnonzero(np.asarray(data["dim"]) == dim)
    return np.asarray(data["bases"][f"space_{hits[0]}"]) if hits.size else None


def read_ones(unit: Unit, src: Source) -> Reading:
    off = logit_layer(unit, src)
    if off:
        return not_applicable(off)
    n_f = src.shapes(unit.files["realizations"], "fv_realizations")["responses"][1]
    null = chance_angle(n_f, 1)
    basis = _space(unit, src, n_f - 1)
    dims = ", ".join(str(int(d)) for d in src.h5(unit.files["critical_space"], "fv_critical_space")["dim"])
    if basis is None:
        return Reading(90.0, null=null, reason=f"no {n_f - 1}-dim critical space (dims {dims})")
    angle = angle_to_span(np.ones(n_f), complement(basis))
    return Reading(angle, null=null, reason=f"angle of (1, ..., 1) to the complement of the {n_f - 1}-dim C (deg)")


def read_excluded(unit: Unit, src: Source) -> Reading:
    off = logit_layer(unit, src)
    if off:
        return not_applicable(off)
    excluded = list((src.attrs(unit.files["data"]).get("config") or {}).get("exclude_classes") or [])
    if not excluded:
        return not_applicable("the network was trained on every class (the claim is about one never shown a class)")
    n_f = src.shapes(unit.files["realizations"], "fv_realizations")["responses"][1]
    dim = n_f - 1 - len(excluded)
    null = chance_angle(n_f, 1 + len(excluded))
    basis = _space(unit, src, dim)
    if basis is None:
        dims = ", ".join(str(int(d)) for d in src.h5(unit.files["critical_space"], "fv_critical_space")["dim"])
        return Reading(90.0, null=null, reason=f"no {dim}-dim critical space (dims {dims})")
    rest = complement(basis)
    angles = [angle_to_span(np.eye(n_f)[c], rest) for c in excluded]
    names = ", ".join(f"e_{c}" for c in excluded)
    return Reading(
        max(angles), null=null, reason=f"largest angle of {names} to the complement of the {dim}-dim C (deg)"
    )


FIG = "results/fv/{name}/figures/"
CLAIMS = [
    Claim(
        id="ifv_angle",
        paper=PAPER,
        statistic="median angle (deg) between the target x and the predicted objective x* (stationary realizations "
        "of sparse targets)",
        expected="about 10 deg",
        direction="<",
        null=20.0,
        null_text="20 deg (twice the paper's value)",
        precondition=f"{MIN_STATIONARY}+ stationary sparse-target realizations (grad_rel <= "
        "fv.stationarity.max_grad_rel)",
        kind="fv",
        figure=FIG + "angular.png",
        read=read_ifv_angle,
    ),
    Claim(
        id="ifv_beats_response",
        paper=PAPER,
        statistic="median over stationary sparse-target realizations of angle(x, x*) - angle(x, feature response) "
        "(deg)",
        expected="negative: x* about 10 deg from x, the response about 45 deg",
        direction="<",
        null=0.0,
        null_text="0 (IFV no better than the response)",
        precondition=f"{MIN_STATIONARY}+ stationary sparse-target realizations",
        kind="fv",
        figure=FIG + "angular.png",
        read=read_ifv_vs_response,
    ),
    Claim(
        id="response_beats_random",
        paper=PAPER,
        statistic="median over sparse-target realizations of angle(x, feature response) - angle(x, random objective) "
        "(deg)",
        expected="negative: the response about 45 deg from x, a random objective about 90 deg",
        direction="<",
        null=0.0,
        null_text="0 (the response no better than random)",
        precondition=f"{MIN_STATIONARY}+ sparse-target realizations",
        kind="fv",
        figure=FIG + "angular.png",
        read=read_response_vs_random,
    ),
    Claim(
        id="ifv_exact_within_c",
        paper=PAPER,
        statistic="median angle(x, x*) in R^n_f minus the same within the critical space C (deg), at the logits",
        expected="positive: IFV fails in R^n_f and is exact within C",
        direction=">",
        null=0.0,
        null_text="0 (C helps nothing)",
        precondition=f"FV of the classifier's logits; {MIN_STATIONARY}+ stationary sparse-target realizations",
        kind="fv",
        figure=FIG + "angular.png",
        read=read_ifv_within_c,
    ),
    Claim(
        id="reoptimize_ssim",
        paper=PAPER,
        statistic="median SSIM after re-optimization under x* minus under the feature response y",
        expected="positive: x* keeps the picture, y clearly less",
        direction=">",
        null=0.0,
        null_text="0 (x* no more stable than y)",
        precondition=f"{MIN_REOPTIMIZED}+ re-optimized realizations",
        kind="fv",
        figure=FIG + "ssim.png",
        read=read_ssim,
    ),
    Claim(
        id="critical_space_ones",
        paper=PAPER,
        statistic="angle (deg) of (1, ..., 1) to the complement of the (n_f - 1)-dim critical space (DNcl)",
        expected="0: a 9-dim C whose complement is spanned by (1, ..., 1) (softmax translation invariance)",
        direction="<",
        null=float("nan"),
        null_text="the angle a random direction beats with probability 0.05",
        precondition="FV of the classifier's logits",
        kind="fv",
        figure=FIG + "critical_space.png",
        read=read_ones,
    ),
    Claim(
        id="critical_space_excluded_class",
        paper=PAPER,
        statistic="largest angle (deg) of e_c, c a class never trained on, to the complement of the (n_f - 1 - "
        "#excluded)-dim C",
        expected="0: the network never trained on class 4 (DN4cl) adds e_4 to the complement",
        direction="<",
        null=float("nan"),
        null_text="the angle a random direction beats with probability 0.05",
        precondition="FV of the logits of a network trained without some class",
        kind="fv",
        figure=FIG + "critical_space.png",
        read=read_excluded,
    ),
]
