"""Training seeds as a dimension of the DAG: ``models.<m>.train.seeds: [s0, s1, ...]`` trains one model per seed.

The first seed keeps the model's name (so a one-seed config plans exactly what it did); every further seed ``s`` is
a *replicate* named ``<m>@s<s>`` (``@`` is not allowed in a config name, so no name collides), with everything
downstream of it replicated under the same suffix: the experiments that read the model (``<e>@s<s>``), the FV
experiments (``<fv>@s<s>``, their ``invert_with`` models taken at the same seed), and the replicated names are
added to every list that names experiments or models (complexity, flow, temporal, IdCor, Fourier masks and maps).
Rules see ordinary names, so adding a seed plans only its own jobs and the aggregations that gather them (the
claims table, :mod:`featflow.claims`). Data sets, dictionary seeds, FV targets and noise draws stay as configured:
the spread over replicates is the spread over training seeds alone.

Pure functions on a validated, default-filled config (:func:`featflow.config.validate_config` calls :func:`expand`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

SEP = "@s"

# Lists of experiment names (section path -> key) and of model names that take the replicates beside the originals.
EXPERIMENT_LISTS = (("complexity", "experiments"), ("complexity", "flow", "experiments"), ("temporal", "experiments"))
EXPERIMENT_LISTS += (("frequency", "idcor", "experiments"),)
MODEL_LISTS = (("frequency", "masks", "models"), ("frequency", "maps", "models"))


def replicate(name: str, seed: int) -> str:
    """The name of ``name``'s replicate at training seed ``seed``."""
    return f"{name}{SEP}{seed}"


def base(name: str) -> str:
    """The configured name a (possibly replicated) name comes from."""
    return name.split(SEP, 1)[0]


def model_seeds(model: Mapping[str, Any]) -> list[int]:
    """A model's training seeds: ``train.seeds`` if given, else its one ``train.seed``."""
    train = model.get("train") or {}
    return list(train.get("seeds") or [train.get("seed", 0)])


def _section(config: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = config
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and isinstance(node.get(path[-1]), list) else None


def expand(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with one model per training seed and the experiments, FV experiments and name lists downstream
    of each replicate; ``train.seeds`` is consumed (each model keeps its one ``train.seed``)."""
    out = copy.deepcopy(dict(config))
    models = out.get("models", {})
    seeds: dict[str, list[int]] = {}
    for name in list(models):
        listed = model_seeds(models[name])
        models[name]["train"].pop("seeds", None)
        models[name]["train"]["seed"] = listed[0]
        seeds[name] = listed[1:]
        for seed in listed[1:]:
            twin = copy.deepcopy(models[name])
            twin["train"]["seed"] = seed
            models[replicate(name, seed)] = twin
    extra = {name: seeds.get(spec["model"], []) for name, spec in out.get("experiments", {}).items()}
    for name, later in extra.items():
        for seed in later:
            out["experiments"][replicate(name, seed)] = {
                **copy.deepcopy(out["experiments"][name]),
                "model": replicate(out["experiments"][name]["model"], seed),
            }
    for name, spec in list((out.get("fv") or {}).items()):
        for seed in seeds.get(spec.get("model", ""), []):
            twin = copy.deepcopy(spec)
            twin["model"] = replicate(spec["model"], seed)
            twin["invert_with"] = [
                replicate(m, seed) if seed in seeds.get(m, []) else m for m in spec.get("invert_with", [])
            ]
            out["fv"][replicate(name, seed)] = twin
    for path, later in [(p, extra) for p in EXPERIMENT_LISTS] + [(p, seeds) for p in MODEL_LISTS]:
        holder = _section(out, path)
        if holder is not None:
            names = holder[path[-1]]
            holder[path[-1]] = names + [
                replicate(n, s) for s in _all(later, names) for n in names if s in later.get(n, [])
            ]
    return out


def _all(later: Mapping[str, list[int]], names: list[str]) -> list[int]:
    """Every further seed of ``names``, in increasing order (replicates are listed seed by seed)."""
    return sorted({s for n in names for s in later.get(n, [])})


def replicates(config: Mapping[str, Any], section: str, name: str) -> list[tuple[int, str]]:
    """``(training seed, name)`` of every replicate of ``name`` in an expanded config's ``section``
    (``models``, ``experiments`` or ``fv``), the configured name first."""
    entries = config.get(section) or {}
    found = [n for n in entries if n == name or (base(n) == name and SEP in n)]
    return sorted(((_seed_of(config, section, n), n) for n in found), key=lambda pair: (pair[1] != name, pair[0]))


def _seed_of(config: Mapping[str, Any], section: str, name: str) -> int:
    """The training seed behind an entry of ``models``, ``experiments`` or ``fv``."""
    entry = config[section][name]
    model = name if section == "models" else entry["model"]
    return int(config["models"][model]["train"]["seed"])
