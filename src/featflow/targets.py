"""The final outputs of a run, from its validated config alone: what ``rule all`` asks for.

A branch whose section is absent from the config (``fv``, ``frequency``, ``theory``, ``complexity``,
``temporal``) or null plans no job: it contributes no target here, and its rules are then never reached. The
report's summary table and the claims table it starts with are targets whenever some figure is. Kept free of
Snakemake and of the branches' code (plain names and paths), so that it is tested on configs directly
(tests/workflow/test_targets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featflow.config import BRANCHES

__all__ = ["BRANCHES", "branch_targets", "enabled", "figures", "targets"]

COMPLEXITY_LEAVES = (
    "features.csv",
    "quality.csv",
    "quality.html",
    "factors.csv",
    "features.html",
    "figures/importance.png",
    "figures/iv_curves.png",
    "figures/relations.png",
    "figures/umap.png",
    "figures/top_images.png",
    "figures/pictures.png",
    "meta_features.csv",
    "figures/meta_features.png",
)
FLOW_LEAVES = ("flow.csv", "figures/flow.png")
TEMPORAL_LEAVES = (
    "emergence.csv",
    "factors.csv",
    "sediment.csv",
    "figures/decoding.png",
    "figures/sedimentation.png",
    "figures/importance.png",
)
IFV_LEAVES = (
    "ifv.csv",
    "figures/realizations.png",
    "figures/angular.png",
    "figures/alpha.png",
    "figures/ssim.png",
    "figures/critical_space.png",
)
MASK_FIGURES = (
    "results/frequency/compare/mask_bands.csv",
    "results/frequency/compare/mask_summary.csv",
    "results/frequency/compare/bands_radial.png",
    "results/frequency/compare/bands_angular.png",
    "results/frequency/compare/masks.png",
)
THEORY_TARGETS = (
    "results/theory/accuracy.csv",
    "results/theory/figures/accuracy.png",
    "results/theory/figures/alignment.png",
)
SUMMARY = ("results/summary.rst", "results/summary.csv")
CLAIMS = "results/claims.csv"  # one verdict per claim of the papers (featflow.claims), the landing page's head


def enabled(config: Mapping[str, Any], branch: str) -> bool:
    """Whether ``branch``'s section is in the config (absent or null: the branch is off)."""
    return bool(config.get(branch))


def branch_targets(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Branch (``models``, ``activations`` and those of :data:`BRANCHES`) -> its final outputs."""
    out: dict[str, list[str]] = {
        "models": [f"results/models/{name}.pt" for name in config.get("models") or {}]
        + [
            f"results/models/{name}/epoch_{epoch}.pt"
            for name, model in (config.get("models") or {}).items()
            for epoch in model.get("train", {}).get("checkpoints", [])
        ],
        "activations": [
            f"results/{name}/activations/{split}.h5"
            for name, exp in (config.get("experiments") or {}).items()
            for split in exp["activations"]["splits"]
        ],
    }
    fv = config.get("fv") or {}
    out["fv"] = [f"results/fv/{name}/{leaf}" for name in fv for leaf in IFV_LEAVES] + [
        f"results/fv/{name}/figures/cross_{other}.png" for name, spec in fv.items() for other in spec["invert_with"]
    ]
    freq = config.get("frequency") or {}
    masks = (freq.get("masks") or {}).get("models") or []
    out["frequency"] = (
        (list(MASK_FIGURES) if masks else [])
        + [f"results/frequency/models/{m}/maps.png" for m in (freq.get("maps") or {}).get("models") or []]
        + [f"results/{e}/frequency/idcor_layers.png" for e in (freq.get("idcor") or {}).get("experiments") or []]
    )
    out["theory"] = list(THEORY_TARGETS) if enabled(config, "theory") else []
    complexity = config.get("complexity") or {}
    analyzed = complexity.get("experiments") or []
    out["complexity"] = [f"results/{name}/complexity/{leaf}" for name in analyzed for leaf in COMPLEXITY_LEAVES]
    flowing = (complexity.get("flow") or {}).get("experiments") or []
    out["complexity"] += [f"results/{name}/complexity/{leaf}" for name in flowing for leaf in FLOW_LEAVES]
    followed = (config.get("temporal") or {}).get("experiments") or []
    out["temporal"] = [f"results/{name}/temporal/{leaf}" for name in followed for leaf in TEMPORAL_LEAVES]
    return out


def figures(config: Mapping[str, Any]) -> list[str]:
    """Every report figure of the run (the summary table's inputs), sorted."""
    return sorted(t for paths in branch_targets(config).values() for t in paths if t.endswith(".png"))


def targets(config: Mapping[str, Any]) -> list[str]:
    """Every final output of the run: each enabled branch's targets, then the claims table and the summary when
    there are figures."""
    paths = [t for branch in branch_targets(config).values() for t in branch]
    return paths + ([CLAIMS, *SUMMARY] if figures(config) else [])


def quality_tables(paths: list[str]) -> list[str]:
    """The dictionary quality tables among a run's targets (one per analyzed experiment and training seed): the
    landing page's dictionary table reads them."""
    return [path for path in paths if path.endswith("/complexity/quality.csv")]
