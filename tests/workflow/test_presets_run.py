"""Every preset runs for real, scaled down: the preset's architectures, resolutions, layers, aggregations,
parametrizations and branch settings, with sample and step counts overridden small, data from fixtures (CIFAR-10
python batches, ImageFolder trees of generated PNGs at the preset's resolution) and random weights saved as a
plain state_dict where the preset loads weights. It catches wrong layer names, shape mismatches and memory
blow-ups at 224 px on the CPU that the dry runs of test_presets_alone.py cannot.

All presets run side by side in one DAG (names prefixed), up to every stage whose work depends on the
architecture or the resolution: data, training or loading the weights, activations, the dictionary, codes,
V-information and robustness on the preset's layer, FV realizations, Jacobians, critical spaces and inverse FV,
Fourier masks, adversarial maps, IdCor, the two-layer network, the feature flow through the ResNets' residual
blocks. The remaining rules (tables and figures) only read those outputs and run in the tiny DAG; the whole of
each preset's DAG is planned by test_presets_alone.py.

Two sizes. In ``make test``: one model per architecture of a preset (the DenseNet IFV preset's second DenseNet,
trained without a class, and the Fourier preset's PGD-trained ResNet18, the same networks as their first ones,
are left out) and unsharded activations: 41 jobs, 3 min 24 s on 2 idle cores, each job mostly the ~4.5 CPU-s
import of torch and torchvision.
``make test-presets`` (FEATFLOW_PRESETS_RUN=full) runs every model, two of the Fourier masks' models and the
presets' shards (at most 2): 58 jobs, 4 min 53 s on 2 idle cores (2026-12-02)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml

from featflow.config import ModelSpec, merged
from featflow.models import build_model
from featflow.names import checked
from tests.folder_data import write_cifar10, write_imagefolder
from tests.workflow.conftest import ROOT, copy_workflow, snakemake

PRESETS = sorted((ROOT / "config" / "presets").glob("*.yaml"))
CLASSES = 3  # of the ImageFolder fixture (CIFAR-10 fixtures keep their 10)

# Overrides by section: only the counts that set the cost, never a name, layer, aggregation or parametrization.
DATA = {"n_train": 16, "n_test": 8}
TRAIN = {"epochs": 1, "batch_size": 8, "pgd_steps": 1, "checkpoints": []}
ACTIVATIONS = {"batch_size": 8}
MAX_SHARDS = {"suite": 1, "full": 2}
MASK_MODELS = {"suite": 1, "full": 2}  # the standard model first, then one augmentation of the five
COMPLEXITY = {
    "dictionary": {"k": 12, "iterations": 5, "batch_size": 8, "epochs": 1, "code_iterations": 200},
    "redundancy": {"masks": 2100, "mask_seeds": 2},  # the estimator needs masks >= neurons + 2 (2,048 at most)
    "robustness": {"draws": 2, "images": 8},
    "pictures": {"n_features": 1, "top_images": 2, "adam_steps": 2},
}
FV = {
    "n_f": 4,
    "adam_steps": 2,
    "lbfgs_steps": 2,
    "n_sparse": 2,
    "batch_size": 8,
    "sample_chunk": 4,
    "jacobian_chunk": 4,
    "critical_space": {"n_samples": 4, "grid": 3},
    "reoptimize": {"steps": 2, "n_samples": 2},
}
MASKS = {
    "max_samples": 8,
    "probe_folds": 2,
    "dataset_mask": {"epochs": 1, "batch_size": 4},
    "image_masks": {"max_steps": 3, "patience": 2, "n_images": 8, "batch_size": 8},
}
MAPS = {"n_images": 4, "min_steps": 2, "max_steps": 3, "attack_steps": 3, "n_perm": 2}
IDCOR = {"max_samples": 16, "n_perm": 2}
THEORY = {"m": 8, "seeds": 1, "steps": 4, "eval_every": 2}
SHI = {"n_train": 200, "n_test": 100}


def _merge(base: dict, update: dict) -> None:
    """``update`` merged into ``base`` in place (nested sections included)."""
    base.update(merged(base, update))


def _weights(model: dict, classes: int, size: int, path: Path) -> str:
    """Random weights of the model's architecture, saved as the plain state_dict torchvision would save."""
    spec = ModelSpec(arch=model["arch"], dataset=model["dataset"], cifar_stem=model.get("cifar_stem", True))
    torch.manual_seed(0)
    torch.save(build_model(spec, (3, size, size), classes).body.state_dict(), path)
    return str(path)


def _used_models(cfg: dict) -> set[str]:
    """The models an experiment, an FV entry or the frequency branch of ``cfg`` reads."""
    used = {e["model"] for e in (cfg.get("experiments") or {}).values()}
    for spec in (cfg.get("fv") or {}).values():
        used |= {spec["model"], *spec.get("invert_with", [])}
    for part in ("masks", "maps"):
        used |= set(((cfg.get("frequency") or {}).get(part) or {}).get("models", []))
    return used


def _one_fv_per_architecture(cfg: dict) -> None:
    """Drops the FV entries whose model has the architecture of an earlier entry's model (same shapes, same
    code: only the weights differ)."""
    if not cfg.get("fv"):
        return
    seen, kept = set(), {}
    for name, spec in cfg["fv"].items():
        model = cfg["models"][spec["model"]]
        arch = (model["arch"], model.get("cifar_stem", True))
        if arch not in seen:
            seen.add(arch)
            kept[name] = spec
    cfg["fv"] = kept


def scaled_down(preset: dict, root: Path, size: str = "suite") -> dict:
    """The preset with its counts made small and its data and weights replaced by fixtures under ``root``;
    ``size`` "suite" also keeps one model per architecture (module docstring), "full" keeps them all."""
    cfg = yaml.safe_load(yaml.safe_dump(preset))
    sizes, classes = {}, {}
    for name, ds in cfg["datasets"].items():
        if ds["kind"] == "cifar10":
            ds["path"] = str(write_cifar10(root / "cifar10"))
            classes[name] = 10
        elif ds["kind"] == "imagefolder":
            size_px = ds.get("image_size", 224)
            ds["path"] = str(write_imagefolder(root / "imagefolder", CLASSES, 8, (size_px, size_px)))
            classes[name] = CLASSES
        _merge(ds, SHI if ds["kind"] == "shi" else DATA)
        sizes[name] = ds.get("image_size", 32)
    for exp in (cfg.get("experiments") or {}).values():
        _merge(exp.setdefault("activations", {}), ACTIVATIONS)
        exp["activations"].pop("max_samples", None)
        exp["activations"]["shards"] = min(exp["activations"].get("shards", 1), MAX_SHARDS[size])
    if cfg.get("complexity"):
        _merge(cfg["complexity"], COMPLEXITY)
    if size == "suite":
        _one_fv_per_architecture(cfg)
    for spec in (cfg.get("fv") or {}).values():
        _merge(spec, FV)
    for part, small in (("masks", MASKS), ("maps", MAPS), ("idcor", IDCOR)):
        if (cfg.get("frequency") or {}).get(part):
            _merge(cfg["frequency"][part], small)
    if (cfg.get("frequency") or {}).get("masks"):
        cfg["frequency"]["masks"]["models"] = cfg["frequency"]["masks"]["models"][: MASK_MODELS[size]]
    used = _used_models(cfg)
    cfg["models"] = {name: m for name, m in (cfg.get("models") or {}).items() if name in used}
    for name, model in (cfg.get("models") or {}).items():
        if model.get("weights"):
            data = model["dataset"]
            model["weights"] = _weights(model, classes[data], sizes[data], root / f"{name}.pth")
        else:
            _merge(model.setdefault("train", {}), TRAIN)
    if cfg.get("theory"):
        _merge(cfg["theory"], THEORY)
    return cfg


def namespaced(cfg: dict, prefix: str) -> dict:
    """``cfg`` with every data set, model, experiment and FV name prefixed, references included, so that all
    presets run side by side in one DAG (the two cores stay busy while jobs start)."""
    ren = {section: {n: f"{prefix}-{n}" for n in cfg.get(section) or {}} for section in ("datasets", "models")}
    ren["experiments"] = {n: f"{prefix}-{n}" for n in cfg.get("experiments") or {}}
    out = {key: value for key, value in cfg.items() if key not in ("datasets", "models", "experiments", "fv")}
    out["datasets"] = {ren["datasets"][n]: ds for n, ds in cfg["datasets"].items()}
    out["models"] = {
        ren["models"][n]: {**m, "dataset": ren["datasets"][m["dataset"]]} for n, m in cfg["models"].items()
    }
    out["experiments"] = {
        ren["experiments"][n]: {**e, "model": ren["models"][e["model"]], "dataset": ren["datasets"][e["dataset"]]}
        for n, e in (cfg.get("experiments") or {}).items()
    }
    out["fv"] = {
        f"{prefix}-{n}": {
            **f,
            "model": ren["models"][f["model"]],
            "invert_with": [ren["models"][m] for m in f.get("invert_with", [])],
        }
        for n, f in (cfg.get("fv") or {}).items()
    }
    if out.get("complexity"):
        out["complexity"]["experiments"] = [ren["experiments"][e] for e in out["complexity"]["experiments"]]
        flow = out["complexity"].get("flow") or {}
        if flow.get("experiments"):
            flow["experiments"] = [ren["experiments"][e] for e in flow["experiments"]]
    for part in ("masks", "maps"):
        if (out.get("frequency") or {}).get(part):
            spec = out["frequency"][part]
            spec["models"], spec["dataset"] = (
                [ren["models"][m] for m in spec["models"]],
                ren["datasets"][spec["dataset"]],
            )
    if (out.get("frequency") or {}).get("idcor"):
        out["frequency"]["idcor"]["experiments"] = [
            ren["experiments"][e] for e in out["frequency"]["idcor"]["experiments"]
        ]
    if out.get("theory"):
        out["theory"]["structured"] = ren["datasets"][out["theory"]["structured"]]
        out["theory"]["unstructured"] = ren["datasets"][out["theory"]["unstructured"]]
    return out


def stage_targets(cfg: dict) -> list[str]:
    """The outputs of every architecture- and resolution-dependent stage of a validated config."""
    out = [f"results/models/{name}.pt" for name in cfg["models"]]
    out += [f"results/{name}/activations/test.h5" for name in cfg["experiments"]]
    for name in (cfg.get("complexity") or {}).get("experiments", []):
        out += [f"results/{name}/complexity/vinfo.h5", f"results/{name}/complexity/robustness.h5"]
    for name in ((cfg.get("complexity") or {}).get("flow") or {}).get("experiments", []):
        out.append(f"results/{name}/complexity/flow.h5")  # hooks on each residual block of the preset's ResNet
    out += [f"results/fv/{name}/ifv.h5" for name in cfg.get("fv") or {}]
    freq = cfg.get("frequency") or {}
    out += [f"results/frequency/models/{m}/masks.h5" for m in (freq.get("masks") or {}).get("models", [])]
    out += [f"results/frequency/models/{m}/maps.h5" for m in (freq.get("maps") or {}).get("models", [])]
    for name in (freq.get("idcor") or {}).get("experiments", []):
        a, b = freq["idcor"]["pairs"][0]
        out.append(f"results/{name}/frequency/idcor/{a}--{b}.csv")
    if cfg.get("theory"):
        out.append(f"results/theory/{cfg['theory']['structured']}/network.h5")
    return out


def all_presets(root: Path, size: str = "suite") -> tuple[dict, dict[str, list[str]]]:
    """One config holding every preset scaled down to ``size`` (names prefixed) and each preset's stage outputs."""
    merged: dict = {"seed": 0, "datasets": {}, "models": {}, "experiments": {}, "fv": {}}
    own = {}
    for preset in PRESETS:
        prefix = preset.stem.replace("_", "-")  # names allow letters, digits and dashes
        cfg = namespaced(scaled_down(yaml.safe_load(preset.read_text()), root / preset.stem, size), prefix)
        own[preset.stem] = stage_targets(checked(cfg))
        for section in ("datasets", "models", "experiments", "fv"):
            merged[section].update(cfg[section])
        for branch in ("complexity", "frequency", "theory"):
            if not cfg.get(branch):
                continue
            if branch in merged:  # two presets with the complexity branch: one section, both experiments
                assert branch == "complexity", branch
                merged[branch]["experiments"] += cfg[branch]["experiments"]
                flows = [c.get("flow") or {} for c in (merged[branch], cfg[branch])]
                merged[branch]["flow"] = {"experiments": [e for f in flows for e in f.get("experiments", [])]}
            else:
                merged[branch] = cfg[branch]
    return merged, own


def test_every_preset_runs_scaled_down(tmp_path):
    workdir = copy_workflow(tmp_path / "run", ROOT / "config" / "config.yaml")
    size = "full" if os.environ.get("FEATFLOW_PRESETS_RUN") == "full" else "suite"
    config, own = all_presets(workdir / "fixtures", size)
    (workdir / "presets.yaml").write_text(yaml.safe_dump(config))
    stages = sorted({t for outs in own.values() for t in outs})
    result = snakemake(workdir, "--configfile", "presets.yaml", "--keep-going", *stages)
    missing = {name: [t for t in outs if not (workdir / t).exists()] for name, outs in own.items()}
    missing = {name: outs for name, outs in missing.items() if outs}
    assert result.returncode == 0 and not missing, (missing, result.stderr[-6000:])
