"""Claims of Fel et al. (NeurIPS 2024, feature complexity) and their readers: the complexity branch's feature table
(``features.parquet``: per-feature arrays and the run-level facts in its metadata), the planted factors' table,
the feature-flow table and the emergence table of complexity over training.

Kinds of experiment: ``complexity`` (``complexity.experiments``), ``flow`` (``complexity.flow.experiments``),
``temporal`` (``temporal.experiments``); each replicated over the training seeds of its model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from featflow.claims.core import Claim, Source, Unit
from featflow.claims.verdict import Reading, not_applicable
from featflow.seeds import base, replicates

PAPER = "Fel et al. 2024"
PLANTED = ("color", "orientation", "parity")
MIN_MATCHED = 10  # matched features below which a fraction over them says little


def _experiments(config: Mapping[str, Any], names: list[str] | None) -> list[str]:
    """The configured (not replicated) names of a list of experiments, in order."""
    return list(dict.fromkeys(base(n) for n in names or []))


def units(config: Mapping[str, Any], boot_seed: int) -> list[Unit]:
    """Every replicate of every complexity, flow and temporal experiment, with the files its claims read."""
    complexity = config.get("complexity") or {}
    kinds = {
        "complexity": (
            complexity.get("experiments"),
            lambda n: {
                "table": f"results/{n}/complexity/features.parquet",
                "factors": f"results/{n}/complexity/factors.csv",
            },
        ),
        "flow": (
            (complexity.get("flow") or {}).get("experiments"),
            lambda n: {"flow": f"results/{n}/complexity/flow.csv"},
        ),
        "temporal": (
            (config.get("temporal") or {}).get("experiments") if complexity else None,
            lambda n: {
                "emergence": f"results/{n}/temporal/emergence.csv",
                "sediment": f"results/{n}/temporal/sediment.csv",
            },
        ),
    }
    return [
        Unit(kind, exp, seed, name, files(name), boot_seed=boot_seed)
        for kind, (names, files) in kinds.items()
        for exp in _experiments(config, names)
        for seed, name in replicates(config, "experiments", exp)
    ]


def _rho(x: np.ndarray, y: np.ndarray, unit: Unit, what: str) -> Reading:
    """Spearman's rho of (x, y) with its paired bootstrap 95% CI, over the finite pairs."""
    from featflow.metrics.stats import spearman_ci

    rho = spearman_ci(np.asarray(x, float), np.asarray(y, float), seed=unit.boot_seed)
    if not math.isfinite(rho.rho):
        return not_applicable(f"rho undefined: {rho.n} features with finite K and {what}, or one of them constant")
    return Reading(rho.rho, rho.low, rho.high, reason=f"n = {rho.n} features")


def read_importance(unit: Unit, src: Source) -> Reading:
    """rho(K, |importance|) (the paper's gradient x input, E|z_i <d_i, w_c>|); the reason gives rho(K, mean code)
    and the partial rho(K, |importance| | mean code) beside it: where the partial is near 0, "simpler features
    are more important" is carried by their larger codes (issue 26.5)."""
    from featflow.metrics.stats import partial_spearman_ci, spearman_ci

    table = src.table(unit.files["table"])
    reading = _rho(table["complexity"], table["importance_abs"], unit, "|importance|")
    if not reading.ok or "mean_code" not in table.columns:
        return reading
    k, code = table["complexity"].to_numpy(float), table["mean_code"].to_numpy(float)
    by_code = spearman_ci(k, code, seed=unit.boot_seed)
    partial = partial_spearman_ci(k, table["importance_abs"].to_numpy(float), code, seed=unit.boot_seed)
    return replace(
        reading,
        reason=f"{reading.reason}; rho(K, mean code) {by_code.rho:+.2f} [{by_code.low:+.2f}, {by_code.high:+.2f}]; "
        f"partial rho(K, |importance| | mean code) {partial.rho:+.2f} [{partial.low:+.2f}, {partial.high:+.2f}]",
    )


def read_sensitivity(unit: Unit, src: Source) -> Reading:
    table = src.table(unit.files["table"])
    sigmas = {float(m.group(1)): c for c in table.columns if (m := re.fullmatch(r"sensitivity_s(.+)", c))}
    at_chance = {float(s) for s in table.attrs.get("noise_at_chance", [])}
    usable = sorted(s for s in sigmas if s not in at_chance)
    if not usable:
        return not_applicable(f"accuracy at chance under every noise level {sorted(sigmas)}: no sensitivity to read")
    sigma = usable[-1]
    reading = _rho(table["complexity"], table[sigmas[sigma]], unit, f"sensitivity at sigma {sigma:g}")
    return replace(reading, reason=f"{reading.reason}, sigma {sigma:g} (largest above chance)")


def read_redundancy(unit: Unit, src: Source) -> Reading:
    """rho(K, redundancy) at the first drop fraction, its interval the bootstrap CI over features widened to the
    rhos of the single mask seeds and to rho +- their range: a spread across mask draws that straddles 0 or
    exceeds the effect leaves the claim inconclusive."""
    table = src.table(unit.files["table"])
    columns = [c for c in table.columns if c.startswith("redundancy_p")]
    if not columns:
        return not_applicable("no redundancy column in the feature table")
    reading = _rho(table["complexity"], table[columns[0]], unit, columns[0])
    seeds = np.asarray(table.attrs.get("redundancy_seed_rho", {}).get(columns[0].removeprefix("redundancy_p"), []))
    seeds = seeds[np.isfinite(seeds)]
    if seeds.size < 2:
        return not_applicable("redundancy from fewer than 2 mask seeds: its spread over mask draws is not measured")
    if not reading.ok:
        return reading
    spread = float(np.ptp(seeds))
    masks = table.attrs.get("redundancy_masks")
    return replace(
        reading,
        low=min(reading.low, float(seeds.min()), reading.value - spread),
        high=max(reading.high, float(seeds.max()), reading.value + spread),
        reason=f"{reading.reason}; rho over {seeds.size} mask seeds of {masks} masks {seeds.min():+.3f} .. "
        f"{seeds.max():+.3f} (range {spread:.3f}); interval: bootstrap CI widened by that range",
    )


def read_localization(unit: Unit, src: Source) -> Reading:
    table = src.table(unit.files["table"])
    if "participation" not in table.columns:
        return not_applicable("no participation column in the feature table")
    return _rho(table["complexity"], table["participation"], unit, "participation ratio")


def read_reconstruction(unit: Unit, src: Source) -> Reading:
    facts = src.table(unit.files["table"]).attrs
    if not facts.get("accuracy"):
        return not_applicable("the feature table records no accuracy")
    kept = float(facts["accuracy_reconstructed"]) / float(facts["accuracy"])
    return Reading(kept, reason=f"accuracy {facts['accuracy_reconstructed']:.4f} with z D* of {facts['accuracy']:.4f}")


def read_planted_order(unit: Unit, src: Source) -> Reading:
    factors = src.table(unit.files["factors"])
    if factors.empty or not set(PLANTED) <= set(factors.get("factor", [])):
        return not_applicable("no planted factors (color, orientation, parity) in this data set")
    k = factors.set_index("factor")["complexity"]
    margin = min(k["orientation"] - k["color"], k["parity"] - k["orientation"])
    return Reading(float(margin), reason=", ".join(f"K({f}) {k[f]:.3f}" for f in PLANTED))


def _flow_features(unit: Unit, src: Source) -> Any:
    table = src.table(unit.files["flow"])
    return table[table["kind"] == "feature"]


def read_retention(unit: Unit, src: Source) -> Reading:
    feats = _flow_features(unit, src)
    if "retention_mean" not in feats.columns:
        return not_applicable("no code retention in the flow table (main-branch ablation not run)")
    return _rho(feats["complexity"], feats["retention_mean"], unit, "mean code retention")


def read_skip_share_cka(unit: Unit, src: Source) -> Reading:
    feats = _flow_features(unit, src)
    return _rho(feats["complexity"], feats["skip_share_cka"], unit, "CKA skip share")


def read_emergence(unit: Unit, src: Source) -> Reading:
    table = src.table(unit.files["emergence"])
    if "iv_epoch_0" not in table.columns:
        return not_applicable("no epoch-0 checkpoint (the untrained control): emergence not measured")
    epochs = table["emergence_epoch"].to_numpy(float)
    if np.unique(epochs[np.isfinite(epochs)]).size < 2:
        return not_applicable("every feature that gains emerges at the same checkpoint: no order to correlate with K")
    from featflow.metrics.stats import spearman_ci

    reading = _rho(table["complexity"], epochs, unit, "emergence epoch")
    init = spearman_ci(table["complexity"].to_numpy(float), table["iv_epoch_0"].to_numpy(float), seed=unit.boot_seed)
    readable = float(np.nanmean(table["readable_at_init"].to_numpy(float)))
    return replace(
        reading,
        reason=f"{reading.reason} that gain over epoch 0; {readable:.0%} readable at epoch 0; rho(K, I_V_0) "
        f"{init.rho:+.2f} [{init.low:+.2f}, {init.high:+.2f}]",
    )


def read_sediment(unit: Unit, src: Source) -> Reading:
    from scipy.stats import binomtest

    table = src.table(unit.files["sediment"])
    epochs = sorted(int(c.removeprefix("k_epoch_")) for c in table.columns if c.startswith("k_epoch_"))
    if len(epochs) < 2:
        return not_applicable("no trained checkpoint before the final model: nothing to follow over training")
    first, last = table[f"k_epoch_{epochs[0]}"].to_numpy(float), table[f"k_epoch_{epochs[-1]}"].to_numpy(float)
    ok = np.isfinite(first) & np.isfinite(last) & (first != last)
    if ok.sum() < MIN_MATCHED:
        return not_applicable(f"only {int(ok.sum())} features matched with a change of K (need {MIN_MATCHED})")
    down, n = int((last[ok] < first[ok]).sum()), int(ok.sum())
    p = float(binomtest(down, n, 0.5).pvalue)
    return Reading(down / n, p=p, reason=f"{down} of {n} matched features, epoch {epochs[0]} to {epochs[-1]}")


FIG = "results/{name}/complexity/figures/"
CLAIMS = [
    Claim(
        id="complexity_importance",
        paper=PAPER,
        statistic="Spearman rho(K, |importance|) over the dictionary's features",
        expected="negative: simpler features are more important",
        direction="<",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="finite K and importance for 3+ features",
        kind="complexity",
        figure=FIG + "importance.png",
        read=read_importance,
    ),
    Claim(
        id="complexity_sensitivity",
        paper=PAPER,
        statistic="Spearman rho(K, sensitivity to input noise) at the largest sigma whose accuracy stays above chance",
        expected="positive: complex features are more sensitive",
        direction=">",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="a noise level at which the network is above chance",
        kind="complexity",
        figure=FIG + "relations.png",
        read=read_sensitivity,
    ),
    Claim(
        id="complexity_redundancy",
        paper=PAPER,
        statistic="Spearman rho(K, redundancy), redundancy = E_m[CKA(X m, z_i)] / CKA(X, z_i) over Bernoulli neuron "
        "masks (thousands per mask seed); interval: bootstrap over features widened by the range over mask seeds",
        expected="negative: complex features are less redundant",
        direction="<",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="a redundancy column for 3+ features, from 2+ mask seeds",
        kind="complexity",
        figure=FIG + "relations.png",
        read=read_redundancy,
    ),
    Claim(
        id="complexity_localization",
        paper=f"featflow's addition to {PAPER}",
        statistic="Spearman rho(K, participation ratio of X^T z_i), the effective number of neurons carrying a feature",
        expected="negative: complex features are less redundant, i.e. carried by fewer neurons (the paper's reading "
        "of a low redundancy: 'localized, relying on fewer neurons')",
        direction="<",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="a participation column for 3+ features",
        kind="complexity",
        figure=FIG + "relations.png",
        read=read_localization,
    ),
    Claim(
        id="dictionary_keeps_accuracy",
        paper=PAPER,
        statistic="accuracy of the classifier fed z D* over its accuracy on f_n(x)",
        expected="> 99% of the accuracy kept",
        direction=">",
        null=0.99,
        null_text="0.99",
        precondition="the feature table records both accuracies",
        kind="complexity",
        figure=FIG + "top_images.png",
        read=read_reconstruction,
    ),
    Claim(
        id="planted_factor_order",
        paper=PAPER,
        statistic="min(K(orientation) - K(color), K(parity) - K(orientation)) of the planted factors",
        expected="K(color) < K(orientation) < K(parity) (colors simple, counting complex)",
        direction=">",
        null=0.0,
        null_text="0 (order broken)",
        precondition="planted data (factors color, orientation, parity stored)",
        kind="complexity",
        figure=FIG + "iv_curves.png",
        read=read_planted_order,
    ),
    Claim(
        id="flow_retention",
        paper=PAPER,
        statistic="Spearman rho(K, code retention) with each residual block's main branch zeroed (only the skip "
        "passes), retention = correlation over images of a feature's codes with and without the ablation, mean over "
        "blocks",
        expected="negative: simple features ride the skip paths nearly unchanged, complex ones are built by the main "
        "branches",
        direction="<",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="a residual network (feature flow run with the ablation)",
        kind="flow",
        figure=FIG + "flow.png",
        read=read_retention,
    ),
    Claim(
        id="flow_skip_share_cka",
        paper=PAPER,
        statistic="Spearman rho(K, skip share of CKA) over the residual blocks",
        expected="negative: simple features ride the skip paths",
        direction="<",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="a residual network (feature flow run)",
        kind="flow",
        figure=FIG + "flow.png",
        read=read_skip_share_cka,
    ),
    Claim(
        id="simple_first",
        paper=PAPER,
        statistic="Spearman rho(K, emergence epoch) over the features that gain over the untrained network (first "
        "checkpoint with I_V_e - I_V_0 >= f (I_V_final - I_V_0)); the reason: the share readable at epoch 0, rho(K, "
        "I_V_0)",
        expected="positive: simple features become decodable first",
        direction=">",
        null=0.0,
        null_text="0 (no rank relation)",
        precondition="an epoch-0 checkpoint; features emerging at different checkpoints",
        kind="temporal",
        figure="results/{name}/temporal/figures/decoding.png",
        read=read_emergence,
    ),
    Claim(
        id="features_sediment",
        paper=PAPER,
        statistic="fraction of matched features whose K decreases from the first trained checkpoint to the end, one "
        "dictionary recipe at every epoch (two-sided binomial p against 1/2)",
        expected="> 1/2: K decreases over training (features sediment)",
        direction=">",
        null=0.5,
        null_text="1/2 (as many rise as fall)",
        precondition=f"{MIN_MATCHED}+ features matched across training with a change of K",
        kind="temporal",
        figure="results/{name}/temporal/figures/sedimentation.png",
        read=read_sediment,
    ),
]
