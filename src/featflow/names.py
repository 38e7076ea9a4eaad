"""Names in a config checked against the networks they address, before any job runs (no data, no weights).

``python -m featflow.names FILE...`` checks config files this way (``make run CONFIG=...`` calls it first).
Each model is built untrained on the CPU, one input of its data set's shape is pushed through it with hooks,
and every layer named in the config must be one of its modules, with FV's ``n_f`` no larger than that layer's
width, every pictured feature id (``complexity.pictures.ids``) an atom of the dictionary, every experiment
followed by ``complexity.flow`` a residual network with the named blocks, and no experiment may cut a split into
more extraction shards than it has samples. A misspelling lists the closest names.

What a model's forward pass tells (layer shapes, residual blocks) is kept in the user's cache folder
(``$XDG_CACHE_HOME/featflow/names``, ``~/.cache`` by default), keyed by the model entry, its input, the code of
this module's import closure and the torch / torchvision versions: a config seen before is checked without
importing torch, which is half the cost of every Snakefile parse (~2 of ~4.5 CPU-s).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from featflow import store
from featflow.config import PLANTED_CLASS_NAMES as PLANTED_CLASSES
from featflow.config import (
    ConfigError,
    DatasetSpec,
    ModelSpec,
    dictionary_of,
    is_weights_name,
    load_yaml,
    validate_config,
)
from featflow.config import merged as config_merged
from featflow.repro import package_version, script_code

# (channels, classes) of the data set kinds whose images are not read from a folder.
IMAGE_KINDS = {"planted": (3, len(PLANTED_CLASSES)), "digits": (1, 10), "cifar10": (3, 10)}


def input_signature(spec: DatasetSpec) -> tuple[tuple[int, ...], int]:
    """Input shape (C, H, W) or (d,) and class count of a data set, from its spec alone."""
    if spec.kind == "shi":
        return (spec.shi.d,), 2
    if spec.kind == "imagefolder":
        train = Path(spec.path or "") / "train"
        classes = sum(1 for d in train.iterdir() if d.is_dir()) if spec.path and train.is_dir() else 0
        channels = 1 if spec.grayscale else 3
        return (channels, spec.image_size, spec.image_size), max(classes, 2)  # 2: a folder not yet in place
    if spec.kind == "idx":
        return (1, spec.image_size, spec.image_size), idx_class_count(spec.path)
    channels, classes = IMAGE_KINDS[spec.kind]
    channels = 1 if spec.grayscale else channels
    return (channels, spec.image_size, spec.image_size), classes


def idx_class_count(path: str | None) -> int:
    """Classes of an idx data set: the largest test label + 1 (2 for a folder not yet in place)."""
    from featflow import idx

    labels = idx.find(idx.folder(path), "test", "labels")
    return int(idx.read(labels).max()) + 1 if labels and not idx.problem(labels) else 2


def _cache_dir() -> Path:
    """Where forward-pass facts are kept between processes (module docstring)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "featflow" / "names"


def _digest(value: Any) -> str:
    """sha256 of a memo entry's value: a flipped digit in a stored shape is recomputed, not believed."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _memo(kind: str, model_key: str, shape: tuple[int, ...], classes: int, compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-able), read from the cache folder when this model, input, code and torch version have
    been seen; written atomically with its value's sha256, and recomputed when the entry is unreadable, its value
    fails its hash, or the folder is not writable."""
    versions = [package_version("torch"), package_version("torchvision")]
    key = json.dumps([kind, model_key, shape, classes, script_code(__file__), *versions])
    path = _cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == key and entry["sha256"] == _digest(entry["value"]):
            return entry["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    try:
        with store.atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"key": key, "value": value, "sha256": _digest(value)}))
    except OSError:
        pass  # a read-only home: every parse computes
    return value


def _forward_shapes(model_key: str, shape: tuple[int, ...], classes: int) -> dict[str, list[int]]:
    """Output shape (without the batch axis) of every named module of the body, from one forward pass of one
    image on the CPU. Not on the meta device: meta tensors import torch._dynamo and sympy (3-4 s at every
    Snakefile parse), more than building even a ResNet50 costs."""
    import torch

    from featflow.models.registry import build_model

    model = build_model(ModelSpec.from_dict(json.loads(model_key)), shape, classes).eval()
    shapes: dict[str, list[int]] = {}

    def record(name: str):
        def hook(_module: torch.nn.Module, _inputs: tuple, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, list(out.shape[1:]))

        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in model.body.named_modules() if name]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape)))
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


@cache
def _layer_shapes(model_key: str, shape: tuple[int, ...], classes: int) -> dict[str, tuple[int, ...]]:
    """Layer name -> output shape of a model (a JSON model entry) on inputs of ``shape``, memoized on disk."""
    found = _memo("shapes", model_key, shape, classes, lambda: _forward_shapes(model_key, shape, classes))
    return {name: tuple(dims) for name, dims in found.items()}


def _block_names(model_key: str, shape: tuple[int, ...], classes: int) -> list[str]:
    """Names of the residual blocks of a model (featflow.models.residual), built untrained on the CPU."""
    from featflow.models.registry import build_model
    from featflow.models.residual import residual_blocks

    model = build_model(ModelSpec.from_dict(json.loads(model_key)), shape, classes)
    return [block.name for block in residual_blocks(model)]


@cache
def _residual_names(model_key: str, shape: tuple[int, ...], classes: int) -> tuple[str, ...]:
    """:func:`_block_names`, memoized on disk."""
    return tuple(_memo("blocks", model_key, shape, classes, lambda: _block_names(model_key, shape, classes)))


def residual_names(model: Mapping[str, Any], dataset: Mapping[str, Any]) -> tuple[str, ...]:
    """The residual blocks of ``model`` (a validated config entry) on inputs of ``dataset``, in forward order."""
    shape, classes = input_signature(DatasetSpec.from_dict(dataset))
    return _residual_names(json.dumps(model, sort_keys=True), shape, classes)


def _flow_problems(config: Mapping[str, Any]) -> list[str]:
    """Every experiment followed by complexity.flow needs a residual model with the named blocks."""
    flow = (config.get("complexity") or {}).get("flow") or {}
    problems = []
    for name in flow.get("experiments") or []:
        exp = config["experiments"].get(name)
        if exp is None or exp["model"] not in config["models"]:
            continue  # reported by the config check
        model = config["models"][exp["model"]]
        blocks = residual_names(model, config["datasets"][model["dataset"]])
        if not blocks:
            problems.append(
                f"config key 'complexity.flow.experiments': model '{exp['model']}' ({model['arch']}) of experiment "
                f"'{name}' has no residual blocks; expected arch smallresnet or a torchvision ResNet"
            )
            continue
        unknown = [block for block in flow.get("blocks") or [] if block not in blocks]
        if unknown:
            problems.append(
                f"config key 'complexity.flow.blocks': {unknown} are not residual blocks of model '{exp['model']}'; "
                f"expected some of {list(blocks)} (or null for all)"
            )
    return problems


def layer_shapes(model: Mapping[str, Any], dataset: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Layer name -> output shape of ``model`` (a validated config entry) on inputs of ``dataset``."""
    shape, classes = input_signature(DatasetSpec.from_dict(dataset))
    return _layer_shapes(json.dumps(model, sort_keys=True), shape, classes)


def _unknown(key: str, name: str, shapes: Mapping[str, tuple[int, ...]], model: str) -> str:
    close = difflib.get_close_matches(name, list(shapes), n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else f"; its layers include {', '.join(list(shapes)[:12])}"
    return f"config key '{key}': '{name}' is not a layer of model '{model}'{hint}"


def check_names(config: Mapping[str, Any]) -> list[str]:
    """Problems with layer names and feature counts in a validated config (empty when all is well)."""
    datasets, models = config["datasets"], config["models"]
    problems: list[str] = []

    def shapes_of(model: str, key: str) -> dict[str, tuple[int, ...]] | None:
        try:
            return layer_shapes(models[model], datasets[models[model]["dataset"]])
        except ValueError as err:  # an unknown architecture, reported with close names by the registry
            problems.append(f"config key '{key}': {err}")
            return None

    for name, exp in config.get("experiments", {}).items():
        shapes = shapes_of(exp["model"], f"models.{exp['model']}.arch")
        for layer in exp["layers"] if shapes else ():
            if layer not in shapes:
                problems.append(_unknown(f"experiments.{name}.layers", layer, shapes, exp["model"]))
        flat = [layer for layer in exp["activations"]["spatial"] if shapes and len(shapes.get(layer, (0, 0, 0))) != 3]
        if flat:
            problems.append(
                f"config key 'experiments.{name}.activations.spatial': {flat} of model '{exp['model']}' give no "
                "(C, H, W) maps; expected convolutional layers"
            )
    for name, fv in (config.get("fv") or {}).items():
        shapes = shapes_of(fv["model"], f"models.{fv['model']}.arch")
        if not shapes:
            continue
        if fv["layer"] not in shapes:
            problems.append(_unknown(f"fv.{name}.layer", fv["layer"], shapes, fv["model"]))
            continue
        width = shapes[fv["layer"]][0]
        if fv.get("n_f") is not None and fv["n_f"] > width:
            problems.append(
                f"config key 'fv.{name}.n_f': {fv['n_f']} exceeds the {width} features (channels) of layer "
                f"'{fv['layer']}' of model '{fv['model']}'; expected at most {width} (or null for all)"
            )
    complexity = config.get("complexity") or {}
    for name in complexity.get("experiments", []):
        exp, layer = config["experiments"].get(name), dictionary_of(config, name).get("layer")
        if exp and layer and layer not in exp["layers"]:
            problems.append(
                f"config key 'complexity.dictionary.layer': '{layer}' is not among experiment '{name}''s layers "
                f"{exp['layers']}; expected one of them (activations are extracted only for those)"
            )
    problems += _flow_problems(config)
    n_atoms = (complexity.get("dictionary") or {}).get("k", 0)
    beyond = [i for i in (complexity.get("pictures") or {}).get("ids", []) if i >= n_atoms]
    if complexity and beyond:
        problems.append(
            f"config key 'complexity.pictures.ids': {beyond} are not features of a dictionary of "
            f"complexity.dictionary.k = {n_atoms} atoms; expected ids in 0..{n_atoms - 1}"
        )
    return sorted(set(problems))


def pooled_width(shape: tuple[int, ...], pool: str) -> int:
    """Values per image of a layer of output ``shape`` pooled as ``activations.pool`` (featflow.activations.pool)."""
    cells = {"gap": 1, "grid2": 4, "grid4": 16}[pool] if len(shape) == 3 else 1
    return int(shape[0]) * cells if len(shape) == 3 else math.prod(shape)


def check_dictionaries(config: Mapping[str, Any], check_files: bool) -> list[str]:
    """Each analyzed experiment's dictionary method checks its own keys against its layer's pooled width, where the
    method has a config-time check (a dictionary file's header: its width is the layer's), before any job."""
    from featflow.dictionary.registry import method
    from featflow.dictionary.spec import DictionarySpec

    problems = []
    for name in (config.get("complexity") or {}).get("experiments", []) if check_files else ():
        exp, own = config["experiments"].get(name), dictionary_of(config, name)
        check = method(own["method"]).check if exp else None
        layer = own.get("layer") or (exp["layers"][-1] if exp else None)
        shapes = layer_shapes(config["models"][exp["model"]], config["datasets"][exp["dataset"]]) if check else {}
        if check and layer in shapes:
            try:
                check(DictionarySpec.from_dict(own), pooled_width(shapes[layer], exp["activations"]["pool"]), layer)
            except (ValueError, FileNotFoundError) as err:
                problems.append(f"experiment '{name}': {err}")
    return problems


def check_weights(config: Mapping[str, Any], check_files: bool) -> list[str]:
    """Problems with torchvision weights named in a validated config: unknown names, a stem, crop or class
    count they do not fit, and (``check_files``) a file missing from the torch hub cache."""
    problems = []
    for name, model in config["models"].items():
        if not is_weights_name(model.get("weights")):
            continue
        from featflow.models import weights  # torch: only for a config that names weights

        dataset = config["datasets"][model["dataset"]]
        shape, classes = input_signature(DatasetSpec.from_dict(dataset))
        if len(shape) != 3 or shape[0] != 3:
            problems.append(
                f"config key 'models.{name}.weights': torchvision weights take RGB images; data set "
                f"'{model['dataset']}' gives inputs of shape {shape} (set grayscale: false)"
            )
            continue
        counted = check_files or dataset["kind"] != "imagefolder"  # an absent folder has no class count
        problem = weights.problem(model, shape[-1], classes if counted else None, check_files)
        if problem:
            problems.append(f"config key 'models.{name}.weights': {problem}")
    return problems


def check_shards(config: Mapping[str, Any]) -> list[str]:
    """Problems with ``activations.shards`` in a validated config: more shards than the samples a split can
    hold (its ``n_train`` / ``n_test``, a cap for the data sets read from files, and ``max_samples``) would
    leave a shard empty, a failure only when the extraction runs; the same for ``complexity.shards`` and the
    robustness images (the codes' samples are the activations')."""
    problems = []
    for name, exp in config.get("experiments", {}).items():
        acts = exp["activations"]
        dataset = config["datasets"].get(exp["dataset"])
        if acts["shards"] == 1 or dataset is None:
            continue
        for split in acts["splits"]:
            cap = dataset[f"n_{split}"]
            samples = min(cap, acts["max_samples"]) if acts["max_samples"] is not None else cap
            if acts["shards"] > samples:
                problems.append(
                    f"config key 'experiments.{name}.activations.shards': {acts['shards']} shards for at most "
                    f"{samples} {split} samples (datasets.{exp['dataset']}.n_{split}"
                    f"{', activations.max_samples' if acts['max_samples'] is not None else ''}); expected at most "
                    f"{samples}"
                )
    complexity = config.get("complexity") or {}
    shards, images = complexity.get("shards", 1), (complexity.get("robustness") or {}).get("images", 1)
    if complexity and shards > images:
        problems.append(
            f"config key 'complexity.shards': {shards} shards for the {images} images of complexity.robustness.images; "
            f"expected at most {images}"
        )
    return problems


def checked(config: Mapping[str, Any], check_paths: bool = True) -> dict[str, Any]:
    """:func:`featflow.config.validate_config`, then :func:`check_names`, :func:`check_shards` and
    :func:`check_weights`: every problem as one ConfigError."""
    filled = validate_config(config, check_paths)
    problems = check_names(filled) + check_shards(filled) + check_weights(filled, check_paths)
    problems += check_dictionaries(filled, check_paths)
    if problems:
        raise ConfigError("\n".join(problems))
    return filled


def check_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Load config files in order (later ones merged into earlier ones, as ``--configfile`` does) and check them."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = config_merged(merged, load_yaml(path))
    return checked(merged)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m featflow.names FILE...``: check config files before a run; exit 1 with the problems."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m featflow.names CONFIG.yaml [MORE.yaml ...]", file=sys.stderr)
        return 2
    try:
        check_files(paths)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"config OK: {', '.join(map(str, paths))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
