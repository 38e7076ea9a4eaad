"""Config validation and the typed, frozen specs every stage is built from.

The config is checked against the JSON Schema shipped in the package (``featflow/schemas/``, read with
:mod:`importlib.resources`, so a wheel install validates too; draft 2020-12; sibling ``*.schema.yaml`` files
are reachable by ``$ref`` to their file name) before any job runs. Missing keys take
the schema's defaults. Errors name the key, the value and what was expected.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib.resources
import re
import types
import typing
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from featflow import seeds

SCHEMA_PACKAGE = "featflow.schemas"
MAIN_SCHEMA = "config.schema.yaml"

# Top-level sections of the optional branches: absent (or null) plans none of their jobs, and no default fills
# them in (their schemas' defaults apply inside a section that is present).
BRANCHES = ("fv", "frequency", "theory", "complexity", "temporal")

# Dataset kinds read from a local folder, whose ``path`` must exist.
FOLDER_DATASETS = ("cifar10", "imagefolder")

# ``models.<m>.weights`` naming torchvision weights (``IMAGENET1K_V2``, ``ResNet50_Weights.DEFAULT``), not a file:
# an enum member, bare or qualified (a path has a '/' or a suffix, so it never matches).
WEIGHTS_NAME = re.compile(r"^(?:[A-Za-z0-9]+_Weights\.)?[A-Z][A-Z0-9_]*$")


def is_weights_name(value: str | None) -> bool:
    """Whether ``models.<m>.weights`` names torchvision weights rather than a local file."""
    return bool(value) and WEIGHTS_NAME.match(str(value)) is not None


class ConfigError(ValueError):
    """The config does not match the schema, or names a missing file."""


def load_schema() -> tuple[dict[str, Any], Registry]:
    """The main schema and a registry of every ``*.schema.yaml`` shipped beside it, keyed by file name."""
    resources = []
    schema_files = [f for f in importlib.resources.files(SCHEMA_PACKAGE).iterdir() if f.name.endswith(".schema.yaml")]
    for path in sorted(schema_files, key=lambda f: f.name):
        contents = yaml.safe_load(path.read_text())
        if path.name != MAIN_SCHEMA:
            # A sibling's own "$schema" would make jsonschema switch to the stock validator class when a $ref
            # enters it (Validator.evolve -> validator_for), which fills no defaults; all files are 2020-12.
            contents.pop("$schema", None)
        resources.append((path.name, DRAFT202012.create_resource(contents)))
    registry = Registry().with_resources(resources)
    main = registry.contents(MAIN_SCHEMA)
    return main, registry


def _with_defaults(validator_class: type) -> type:
    """Extend a validator so that ``properties`` fills in each missing key's ``default`` (jsonschema FAQ)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Mapping, instance: Any, schema: Mapping) -> Any:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _strict_integers(validator_class: type) -> type:
    """JSON Schema's ``integer`` admits ``2.0``; featflow's does not (``range(2.0)`` fails deep inside a job)."""

    def is_integer(_checker: Any, instance: Any) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = validator_class.TYPE_CHECKER.redefine("integer", is_integer)
    return jsonschema.validators.extend(validator_class, type_checker=checker)


_DefaultingValidator = _with_defaults(_strict_integers(jsonschema.Draft202012Validator))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a dict; a syntax error names the file, line and column (Snakemake's message names none)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: YAML syntax error: {problem}; fix the file (tabs, brackets, indentation)") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys at the top level, found {type(data).__name__}")
    return data


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key, the value and what was expected."""
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hints = []
        for name in extra:
            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        where = key if error.absolute_path else "the top level"
        return f"config: unknown key {', '.join(hints)} under {where}; expected keys: {', '.join(allowed)}"
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    expected = f" Expected: {description}" if description else ""
    return f"config key '{key}': {error.message}.{expected}"


def validate_config(config: Mapping[str, Any], check_paths: bool = True) -> dict[str, Any]:
    """Validate ``config`` against the schema, fill in defaults, check cross-references and data paths.

    ``check_paths=False`` skips the existence checks of local data folders and weights files (presets
    written for another machine). Layer names are checked against the networks by :mod:`featflow.names` (kept
    apart: it builds models, and no stage's code key should depend on it). Returns a new dict; raises
    :class:`ConfigError` with every problem, one per line.
    """
    schema, registry = load_schema()
    # A branch section set to null is off, as an absent one (featflow.targets); a present one gets its defaults.
    filled = copy.deepcopy({key: value for key, value in config.items() if not (key in BRANCHES and value is None)})
    validator = _DefaultingValidator(schema, registry=registry)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_describe(e) for e in errors))
    problems = _check_references(filled) + _check_seed_keys(config) + _check_dictionaries(filled, schema, registry)
    problems += _check_paths(filled) if check_paths else []
    if problems:
        raise ConfigError("\n".join(problems))
    return _key_sorted(seeds.expand(filled))


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged into a copy of ``base`` mapping by mapping, as Snakemake merges ``--configfile`` files."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def dictionary_of(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """``complexity.dictionary`` with experiment ``experiment``'s own changes (``experiments.<name>.dictionary``)
    merged in: the dictionary section every complexity job of that experiment reads (the validated sections hold
    every key, so the merge keeps their sorted order)."""
    base = (config.get("complexity") or {}).get("dictionary") or {}
    own = (config.get("experiments") or {}).get(experiment, {}).get("dictionary") or {}
    return merged(base, own)


def _check_dictionaries(config: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry) -> list[str]:
    """Each experiment's dictionary section (``complexity.dictionary`` and its own changes) against the section's
    schema (which also asks method file for its path), errors named by the experiment's key."""
    if not config.get("complexity"):
        return []
    section = {"$ref": "complexity.schema.yaml#/properties/dictionary"}
    validator = _DefaultingValidator(section, registry=registry)
    problems = []
    for name in config.get("experiments") or {}:
        merged = dictionary_of(config, name)
        for error in validator.iter_errors(merged):
            key = ".".join(map(str, error.absolute_path))
            problems.append(f"config key 'experiments.{name}.dictionary.{key}': {error.message}")
    return problems


def _key_sorted(value: Any) -> Any:
    """Key-sort every mapping, so a section passed to a rule's ``params`` compares equal whatever the YAML order."""
    if isinstance(value, Mapping):
        return {key: _key_sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_key_sorted(v) for v in value]
    return value


def _check_references(config: Mapping[str, Any]) -> list[str]:
    """Names used across sections (experiment -> model, model -> dataset) must exist."""
    problems = []
    datasets, models = config.get("datasets", {}), config.get("models", {})
    for name, model in models.items():
        if model["dataset"] not in datasets:
            problems.append(
                f"config key 'models.{name}.dataset': '{model['dataset']}' is not a data set; "
                f"expected one of {sorted(datasets)}"
            )
    for name, model in models.items():
        train = model["train"]
        late = [e for e in train["checkpoints"] if e > train["epochs"]]
        if late:
            problems.append(
                f"config key 'models.{name}.train.checkpoints': epochs {late} lie beyond the schedule's "
                f"train.epochs = {train['epochs']}; expected epochs in 0..{train['epochs']}"
            )
        if train["checkpoints"] and model.get("weights"):
            problems.append(
                f"config key 'models.{name}.train.checkpoints': model '{name}' loads weights "
                f"({model['weights']}) instead of training; expected no checkpoints (or no weights)"
            )
    problems += _check_temporal(config)
    problems += _check_flow(config)
    for name, exp in config.get("experiments", {}).items():
        for key, pool in (("model", models), ("dataset", datasets)):
            if exp[key] not in pool:
                problems.append(
                    f"config key 'experiments.{name}.{key}': '{exp[key]}' is not defined; "
                    f"expected one of {sorted(pool)}"
                )
        outside = [layer for layer in exp["activations"]["spatial"] if layer not in exp["layers"]]
        if outside:
            problems.append(
                f"config key 'experiments.{name}.activations.spatial': {outside} are not among its layers "
                f"{exp['layers']}; expected some of them"
            )
    problems += _check_positions(config)
    for name, fv in config.get("fv", {}).items():
        if fv["model"] not in models:
            problems.append(
                f"config key 'fv.{name}.model': '{fv['model']}' is not defined; expected one of {sorted(models)}"
            )
        for other in fv.get("invert_with", []):
            if other not in models:
                problems.append(
                    f"config key 'fv.{name}.invert_with': '{other}' is not defined; "
                    f"expected model names from {sorted(models)}"
                )
    return problems


def _check_temporal(config: Mapping[str, Any]) -> list[str]:
    """The temporal branch reads the complexity branch's final dictionary and its model's checkpoints."""
    temporal = config.get("temporal")
    if not temporal:
        return []
    problems = []
    analyzed = (config.get("complexity") or {}).get("experiments") or []
    for name in temporal["experiments"]:
        exp = config.get("experiments", {}).get(name)
        if exp is None:
            problems.append(
                f"config key 'temporal.experiments': '{name}' is not an experiment; "
                f"expected one of {sorted(config.get('experiments', {}))}"
            )
            continue
        if name not in analyzed:
            problems.append(
                f"config key 'temporal.experiments': '{name}' is not in complexity.experiments {list(analyzed)}; "
                "expected experiments the complexity branch analyzes (their final dictionary is decoded over training)"
            )
        if temporal["layer"] is not None and temporal["layer"] not in exp["layers"]:
            problems.append(
                f"config key 'temporal.layer': '{temporal['layer']}' is not a layer of experiment '{name}'; "
                f"expected one of {list(exp['layers'])}"
            )
        model = config.get("models", {}).get(exp["model"])
        if model is not None and not model["train"]["checkpoints"]:
            problems.append(
                f"config key 'temporal.experiments': '{name}' needs checkpoints of model '{exp['model']}'; "
                f"expected models.{exp['model']}.train.checkpoints, e.g. [0, 1, 3, 6] "
                "(epoch 0, the initialization, is the untrained control)"
            )
    return problems


def _check_positions(config: Mapping[str, Any]) -> list[str]:
    """A dictionary fit on positions needs each analyzed experiment's per-position maps of its dictionary layer,
    and pooled vectors in the same channels (global average pooling) to encode the images."""
    complexity = config.get("complexity") or {}
    problems = []
    for name in complexity.get("experiments") or []:
        exp = config.get("experiments", {}).get(name)
        dictionary = dictionary_of(config, name)
        if exp is None or not dictionary.get("positions"):
            continue  # an unknown experiment is reported by the complexity rules' check
        layer = dictionary.get("layer") or exp["layers"][-1]
        if layer not in exp["activations"]["spatial"]:
            problems.append(
                f"config key 'complexity.dictionary.positions': experiment '{name}' stores no per-position maps of "
                f"its dictionary layer '{layer}'; expected '{layer}' in experiments.{name}.activations.spatial"
            )
        if exp["activations"]["pool"] != "gap":
            problems.append(
                f"config key 'complexity.dictionary.positions': experiment '{name}' pools with "
                f"'{exp['activations']['pool']}'; expected activations.pool: gap (atoms in the layer's channels)"
            )
    return problems


def _check_seed_keys(config: Mapping[str, Any]) -> list[str]:
    """A model that gives both ``train.seed`` and ``train.seeds`` (as written) names its seed first in the list:
    the first seed keeps the model's name (featflow.seeds), so another ``seed`` would be silently unused."""
    return [
        f"config key 'models.{name}.train.seed': {train['seed']} is not the first of train.seeds {train['seeds']}; "
        "expected seeds alone, or seed equal to seeds[0]"
        for name, model in (config.get("models") or {}).items()
        if isinstance(model, Mapping)
        for train in [model.get("train") or {}]
        if isinstance(train, Mapping) and "seed" in train and train.get("seeds") and train["seed"] != train["seeds"][0]
    ]


def _check_flow(config: Mapping[str, Any]) -> list[str]:
    """Feature flow reads the complexity branch's codes and K of each experiment it follows."""
    complexity = config.get("complexity") or {}
    analyzed = complexity.get("experiments") or []
    return [
        f"config key 'complexity.flow.experiments': '{name}' is not in complexity.experiments {list(analyzed)}; "
        "expected experiments the complexity branch analyzes (their features are followed through the blocks)"
        for name in (complexity.get("flow") or {}).get("experiments") or []
        if name not in analyzed
    ]


def _check_paths(config: Mapping[str, Any]) -> list[str]:
    """Local data folders and weights files must exist before any job runs."""
    problems = []
    for name, ds in config.get("datasets", {}).items():
        if ds["kind"] == "idx":
            problem = idx_folder_problem(ds.get("path"))
        else:
            problem = _folder_problem(ds["kind"], ds.get("path")) if ds["kind"] in FOLDER_DATASETS else None
        if problem:
            problems.append(f"config key 'datasets.{name}.path': {problem}")
    for name, model in config.get("models", {}).items():
        weights = model.get("weights")
        if weights and WEIGHTS_NAME.match(weights):
            continue  # torchvision weights by name, in the torch hub cache: checked by featflow.names
        if weights and not Path(weights).is_file():
            problems.append(
                f"config key 'models.{name}.weights': '{weights}' is not a file; "
                "expected a local state_dict or featflow checkpoint"
            )
        elif weights and not zipfile.is_zipfile(weights):
            problems.append(
                f"config key 'models.{name}.weights': '{weights}' is not a torch.save file (no zip archive: text, "
                "truncated or legacy format?); expected torch.save(model.state_dict(), path)"
            )
    return problems


CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def idx_folder_problem(path: str | None) -> str | None:
    """What is wrong with an idx data folder (``None``: the shipped Fashion-MNIST test set)."""
    from featflow import idx

    if path is not None and not Path(path).is_dir():
        return f"'{path}' is not a folder; expected a folder of idx files (or no path: the shipped Fashion-MNIST)"
    return idx.folder_problem(idx.folder(path))


def _folder_problem(kind: str, path: str | None) -> str | None:
    """What is wrong with a local data folder (None when it holds what ``kind`` reads)."""
    if not path or not Path(path).is_dir():
        return f"'{path}' is not a folder; expected the local {kind} data folder (downloads are disabled)"
    root = Path(path)
    if kind == "cifar10":
        batches = root / "cifar-10-batches-py"
        missing = [f for f in CIFAR10_FILES if not (batches / f).is_file()]
        if missing:
            return (
                f"'{path}' lacks {batches.name}/{', '.join(missing)}; expected the folder that holds torchvision's "
                "cifar-10-batches-py/ (the extracted cifar-10-python.tar.gz)"
            )
    if kind == "imagefolder":
        evaluation = "test" if (root / "test").is_dir() and not (root / "val").is_dir() else "val"
        for split in ("train", evaluation):
            classes = [d for d in (root / split).glob("*") if d.is_dir()] if (root / split).is_dir() else []
            if not classes:
                return f"'{path}' has no class folders under {split}/; expected {path}/{split}/<class>/<image>"
            if not any(f.suffix.lower() in IMAGE_SUFFIXES for d in classes[:1] for f in d.iterdir()):
                return f"'{classes[0]}' holds no image file; expected images ({', '.join(IMAGE_SUFFIXES)})"
    return None


# --- typed specs -------------------------------------------------------------------------------------------

S = TypeVar("S", bound="Spec")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base of the frozen specs: built from a validated config section, and back to a plain dict."""

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Build from a mapping, converting nested specs and lists to tuples; unknown keys are an error."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}; expected {sorted(names)}")
        kwargs = {key: _convert(hints[key], value) for key, value in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serializable dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and issubclass(hint, Spec) and isinstance(value, Mapping):
        return hint.from_dict(value)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(hint):
            if isinstance(arg, type) and issubclass(arg, Spec) and isinstance(value, Mapping):
                return arg.from_dict(value)
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_convert(inner, v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class ShiSpec(Spec):
    """Shi, Wei & Liang's synthetic data model (SPEC 4.1)."""

    d: int = 500
    D: int = 100
    k: int = 5
    p0: float = 0.5
    structured: bool = True
    noise: float = 0.0


@dataclasses.dataclass(frozen=True)
class DatasetSpec(Spec):
    """A data set: generated (planted, shi, digits) or read from a local folder (cifar10, imagefolder)."""

    kind: str
    n_train: int = 2000
    n_test: int = 500
    image_size: int = 32
    seed: int = 0
    path: str | None = None
    grayscale: bool = False
    exclude_classes: tuple[int, ...] = ()
    shi: ShiSpec = ShiSpec()


@dataclasses.dataclass(frozen=True)
class TrainSpec(Spec):
    """SGD with momentum and a cosine learning-rate schedule."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    head_weight_decay: float | None = None
    augment: str = "none"
    pgd_eps: float = 8 / 255
    pgd_steps: int = 10
    pgd_step: float = 0.125
    pgd_warmup: int = 0
    seed: int = 0
    checkpoints: tuple[int, ...] = ()


# The planted kind's factors and classes (featflow.data.planted generates them), here so that the config check
# knows a data set's class count without importing featflow.data (which imports torch).
PLANTED_FACTOR_NAMES = ("color", "orientation", "parity", "count")
PLANTED_CLASS_NAMES = tuple(
    f"{c}-{o}-{p}" for c in ("warm", "cool") for o in ("horizontal", "vertical") for p in ("even", "odd")
)
# featflow's own small networks (built in featflow.models.registry); every other arch is a torchvision one. Here,
# not in the registry, so that the Snakefile reads it without importing torch.
OWN_ARCHS = ("smallcnn", "smallcnn-smooth", "smallresnet", "mlp")


@dataclasses.dataclass(frozen=True)
class ModelSpec(Spec):
    """An architecture from the registry, trained on ``dataset`` or loaded from ``weights``: a local file, or
    torchvision weights by name from the torch hub cache (downloaded only with ``download``)."""

    arch: str
    dataset: str
    width: int = 32
    cifar_stem: bool = True
    weights: str | None = None
    download: bool = False
    train: TrainSpec = TrainSpec()


@dataclasses.dataclass(frozen=True)
class ActivationsSpec(Spec):
    """How layers are pooled and batched during extraction, which layers are stored per position too
    (``spatial``), in how many jobs (shards) per split, and with how many data-loading worker processes (None:
    the rule's threads)."""

    pool: str = "gap"
    batch_size: int = 256
    splits: tuple[str, ...] = ("train", "test")
    spatial: tuple[str, ...] = ()
    max_samples: int | None = None
    shards: int = 1
    workers: int | None = None


@dataclasses.dataclass(frozen=True)
class ExperimentSpec(Spec):
    """One experiment: a model, a data set to evaluate it on, and the layers to read."""

    model: str
    dataset: str
    layers: tuple[str, ...]
    activations: ActivationsSpec = ActivationsSpec()
    dictionary: dict[str, Any] = dataclasses.field(default_factory=dict)  # changes to complexity.dictionary
