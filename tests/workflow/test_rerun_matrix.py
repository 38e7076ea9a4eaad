"""The rerun matrix on the finished tiny run: a config change plans exactly the rules that read the changed key
and their descendants, a package edit exactly the rules whose import closure reaches the module and theirs.

Every leaf key of the validated tiny config is perturbed (the list is generated from the config, defaults
included). Which jobs a change reaches is computed in one Snakemake session (:class:`Oracle`: the full DAG is
built once, then each job's params and inputs are re-evaluated with the changed value), and checked against
what the key means (:func:`readers`). The issue's table rows, and a sample of leaves, are real `snakemake -n`
runs, compared with the oracle too.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from featflow.config import validate_config
from featflow.repro import PACKAGE_ROOT, import_closure
from tests.workflow.conftest import ROOT, dry_run_after_edit, planned_jobs, snakemake

TINY = validate_config(yaml.safe_load((ROOT / "tests/workflow/tiny.yaml").read_text()))
SCRIPTS = ROOT / "workflow" / "scripts"
FV_RULES = {
    *("fv_targets", "fv_optimize", "fv_figure", "jacobian", "critical_space", "critical_space_figure", "ifv"),
    *("ifv_figures", "reoptimize", "reoptimize_figure", "cross_ifv", "cross_ifv_figure"),
}
COMPLEXITY_RULES = {
    *("dictionary", "codes", "complexity", "redundancy", "robustness", "importance", "feature_table"),
    "dictionary_quality",
    *("complexity_figures", "feature_pictures", "meta_features", "feature_flow", "codes_shard", "robustness_shard"),
}
SHARDED = ("codes", "codes_shard", "robustness", "robustness_shard")  # tiny.yaml: complexity.shards 2
THEORY_RULES = {"theory_train", "theory_baselines", "theory_alignment", "theory_figure_accuracy"}
FREQUENCY_RULES = {"fourier_mask", "fourier_mask_figures", "adversarial_maps", "idcor", "idcor_table"}
FOUNDATION_RULES = {"data", "train", "activations", "activations_shard"}
KNOWN_RULES = (
    FV_RULES
    | COMPLEXITY_RULES
    | THEORY_RULES
    | FREQUENCY_RULES
    | FOUNDATION_RULES
    | {
        *("theory_figure_alignment", "adversarial_maps_figure", "idcor_figure", "summary"),
    }
)
KNOWN_BRANCHES = {"seed", "datasets", "models", "experiments", "fv", "frequency", "theory", "complexity"}
KNOBS = re.compile(
    r"^experiments\.[\w-]+\.activations\.(batch_size|workers)$|^fv\.\w+\.(jacobian_chunk|sample_chunk)$"
    r"|^models\.[\w-]+\.download$"
)
# Leaves that shape the DAG (which targets, how many jobs) and are read by no job's params: the list settings
# whose elements are jobs of their own (adding one plans only its jobs and the figures that gather them).
STRUCTURAL = re.compile(
    r"^(complexity\.(flow\.)?experiments|frequency\.idcor\.experiments|experiments\.[\w-]+\.activations\.splits"
    r"|fv\.\w+\.invert_with|frequency\.maps\.models|theory\.(un)?structured|models\.[\w-]+\.train\.checkpoints)$"
)


def leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf of a config: mappings are walked, lists and scalars are leaves."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], data


def perturbed(value: Any) -> Any:
    """Another value of the same type (a list loses its last element, repeats its only one, or gets one)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.01
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 1
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else value * 2 if value else [0]
    raise TypeError(value)


def readers(path: str) -> set[str] | None:
    """The rules whose params a change of ``path`` must change (what the key means), or None where any rule of
    the key's branch may read it (only the branch is checked then)."""
    if KNOBS.match(path) or STRUCTURAL.match(path):
        return set()
    encoder = {"dictionary", "complexity", "feature_flow", "feature_pictures", *SHARDED, "dictionary_quality"}
    rules: list[tuple[str, set[str]]] = [
        (r"^complexity\.figures\.", {"complexity_figures"}),
        (r"^complexity\.pictures\.", {"feature_pictures"}),
        (r"^complexity\.meta_features\.", {"meta_features"}),
        (r"^complexity\.vinfo\.(test_fraction|ridge_scale)$", {"complexity", "feature_flow"}),
        (r"^complexity\.vinfo\.", {"complexity"}),
        (r"^complexity\.flow\.blocks$", {"feature_flow"}),
        (r"^complexity\.redundancy\.", {"redundancy"}),
        (r"^complexity\.robustness\.", {"robustness", "robustness_shard"}),
        (r"^complexity\.dictionary\.code_(iterations|tol)$", encoder),
        (r"^complexity\.dictionary\.code_ridge$", {*encoder, "complexity_figures"}),
        (r"^complexity\.dictionary\.method$", {*encoder, "complexity_figures", "importance"}),
        (r"^complexity\.dictionary\.(topk|file)\.", set()),  # the sections of methods no experiment uses here
        (r"^complexity\.dictionary\.", {"dictionary", "feature_pictures"}),  # pictures: the whole section
        (r"^fv\.\w+\.reoptimize\.", {"reoptimize"}),
        (r"^fv\.\w+\.critical_space\.select$", {"ifv"}),
        (r"^fv\.\w+\.critical_space\.", {"critical_space"}),
        (r"^fv\.\w+\.stationarity\.", {"ifv"}),
        (r"^fv\.\w+\.(n_sparse|include_canonical)$", {"fv_targets"}),
        (r"^fv\.\w+\.(adam_steps|lbfgs_steps)$", {"fv_optimize"}),
        (r"^fv\.\w+\.store_jacobian$", {"jacobian"}),
        (r"^theory\.baseline_(gamma_range|gamma_points|lr_scale)$", {"theory_baselines"}),
        (r"^theory\.baseline_(C_range|C_points|folds)$", {"theory_train", "theory_baselines"}),
        (r"^theory\.(lr|lr_scale|feature_lr_scale)$", {"theory_train"}),
        (r"^theory\.snapshot_seeds$", {"theory_alignment"}),
        (r"^frequency\.idcor\.pairs$", {"idcor_table"}),
        (r"^frequency\.masks\.models$", {"fourier_mask_figures"}),
    ]
    for pattern, names in rules:
        if re.search(pattern, path):
            return names
    return None


def branch(path: str) -> set[str]:
    """The rules a change of ``path`` may reach directly (params or inputs): its branch's."""
    head = path.split(".")[0]
    if head == "seed":
        return {"*"}
    if head == "datasets":
        return {"data", "critical_space_figure"} | ({"theory_train", "theory_baselines"} if "shi" in path else set())
    if head == "models":
        return {"train", "critical_space_figure"}  # the figure marks the classes its model never saw
    if head == "experiments" and ".dictionary." in path:
        return COMPLEXITY_RULES
    if head == "experiments":
        return {"activations", "activations_shard", "dictionary", "robustness", "codes", "importance", "complexity"} | {
            "complexity_figures",
            "feature_pictures",  # activations.pool: the pictures' response is pooled as the activations
            "meta_features",  # dataset: the gallery shows each meta-feature's top images
            "feature_flow",  # activations.pool: each residual path is pooled as the activations
            *("codes_shard", "robustness_shard"),
            "idcor",
        }
    if head == "fv":
        return FV_RULES
    if head == "frequency":
        part = path.split(".")[1]
        return {
            "masks": {"fourier_mask", "fourier_mask_figures"},
            "maps": {"adversarial_maps", "adversarial_maps_figure"},
            "idcor": {"idcor", "idcor_table"},
        }[part]
    if head == "theory":
        return THEORY_RULES | {"theory_figure_alignment"}
    if head == "complexity":
        return COMPLEXITY_RULES
    return {"*"}  # a branch this table does not know (its own tests check its keys)


def _serialized(value: Any) -> str | None:
    plain = (type(None), bool, int, float, str, list, tuple, dict)
    return repr(value) if isinstance(value, plain) else None  # as Snakemake's params key (Keyed: its key only)


class Oracle:
    """The full DAG of a workflow directory, built once in this process; :meth:`changed` re-evaluates every
    job's params and inputs with one config value changed (in the parsed workflow's CFG, restored after)."""

    def __init__(self, workdir: Path) -> None:
        from snakemake.api import SnakemakeApi
        from snakemake.settings.enums import Quietness
        from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

        self._api = SnakemakeApi(OutputSettings(quiet={Quietness.ALL, Quietness.RULES, Quietness.PROGRESS}))
        api = self._api.__enter__()
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=workdir / "Snakefile")
        self.workflow = workflow_api.dag(DAGSettings(forceall=True)).workflow_api._workflow
        self.workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        self.workflow._build_dag()
        self.dag = self.workflow.dag
        self.cfg = self.workflow.globals["CFG"]
        self.jobs = [job for job in self.dag.jobs if job.rule.name != "all"]
        self.base = {job: self._signature(job) for job in self.jobs}

    def close(self) -> None:
        self._api.__exit__(None, None, None)

    def _signature(self, job: Any) -> tuple:
        try:
            _, params = job.rule.expand_params(job.wildcards_dict, job.input, job.output, job)
            inputs = job.rule.expand_input(job.wildcards_dict)[0]
        except Exception as err:  # a changed name no longer resolves: the job reads it
            return ("unresolved", repr(err))
        return (sorted(map(str, filter(None, map(_serialized, params)))), sorted(map(str, inputs)))

    def changed(self, path: str, value: Any) -> list[Any]:
        """The jobs whose params or inputs differ with ``path`` set to ``value``."""
        *parents, leaf = path.split(".")
        holder = self.cfg
        for key in parents:
            holder = holder[key]
        old = holder[leaf]
        holder[leaf] = copy.deepcopy(value)
        try:
            return [job for job in self.jobs if self._signature(job) != self.base[job]]
        finally:
            holder[leaf] = old

    def planned(self, jobs: list[Any]) -> dict[str, int]:
        """Rule -> jobs a dry run plans when ``jobs`` must rerun: they, their descendants, and the jobs whose
        temporary outputs (deleted after the run) those need again."""
        todo, seen = list(jobs), set()
        while todo:
            job = todo.pop()
            if job in seen or job.rule.name == "all":
                continue
            seen.add(job)
            todo += list(self.dag.depending[job])
            todo += [dep for dep in self.dag.dependencies[job] if all(f.is_temp for f in dep.output)]
        counts: dict[str, int] = {}
        for job in seen:
            counts[job.rule.name] = counts.get(job.rule.name, 0) + 1
        return counts


@pytest.fixture(scope="module")
def oracle(dag_run: Path) -> Iterator[Oracle]:
    import os

    cwd = os.getcwd()
    os.chdir(dag_run)
    try:
        built = Oracle(dag_run)
        yield built
        built.close()
    finally:
        os.chdir(cwd)


CONFIGURED = yaml.safe_load((ROOT / "tests/workflow/tiny.yaml").read_text())
SEEDED = {name for name, model in CONFIGURED["models"].items() if "seeds" in model.get("train", {})}
# The configured entries' leaves: a replicate (<name>@s<seed>, featflow.seeds) has none of its own, and a model
# that lists train.seeds takes its seeds from there (test_seeds_outputs.py plans a further seed).
LEAVES = [
    (path, value)
    for path, value in leaves(TINY)
    if "@" not in path and path not in {f"models.{name}.train.seed" for name in SEEDED}
]


def test_every_leaf_plans_what_reads_it(oracle):
    """For every leaf: the jobs it reaches are its branch's, exactly its readers where the key says which, and
    nothing for a knob; every rule of the run is reached by some leaf."""
    problems, reached = [], set()
    for path, value in LEAVES:
        if path == "seed":  # a constant of every rule's params, parsed once: test_seed_plans_every_rule
            continue
        jobs = oracle.changed(path, perturbed(value))
        # Rules of branches this table does not describe (e.g. temporal, which reads complexity values) are
        # checked by their own tests; here only the branches above.
        rules = {job.rule.name for job in jobs} & KNOWN_RULES
        reached |= rules
        allowed, exact = branch(path), readers(path)
        if "*" not in allowed and not rules <= allowed:
            problems.append(f"{path}: reaches {sorted(rules - allowed)} outside its branch")
        if exact is not None and rules != exact:
            problems.append(f"{path}: reaches {sorted(rules)}, expected {sorted(exact)}")
        if exact is None and not rules and path.split(".")[0] in KNOWN_BRANCHES:
            problems.append(f"{path}: read by no rule (a dead key?)")
    assert not problems, "\n".join(problems)
    readers_of_config = FV_RULES | COMPLEXITY_RULES | THEORY_RULES | FREQUENCY_RULES | FOUNDATION_RULES
    unread = {
        "fv_figure",
        "ifv_figures",
        "reoptimize_figure",
        "feature_table",
        *("theory_figure_accuracy", "theory_figure_alignment"),
    }
    assert readers_of_config - unread - reached == set(), "rules no leaf reaches"


# The issue's table (and the list-valued settings of item 2): change -> what a dry run plans, rule -> jobs.
CLAIMS = {"claims": 1}
ROWS = {
    # two experiments analyzed (planted, planted-res); the flow follows planted-res only
    "complexity.figures.top_images": (["complexity", "figures", "top_images"], 6, {"complexity_figures": 2}),
    "complexity.pictures.ids + 5": (["complexity", "pictures", "ids"], [0, 5], {"feature_pictures": 2}),
    "complexity.vinfo.ridge_scale": (  # complexity and what reads it (other branches may read vinfo too)
        ["complexity", "vinfo", "ridge_scale"],
        0.01,
        {
            **{"complexity": 2, "feature_table": 2, "complexity_figures": 2, "feature_pictures": 2},
            **{"meta_features": 2, "feature_flow": 1},
        },
    ),
    # rules whose files a registered claim reads also replan the claims table (featflow.claims, one job)
    "complexity.flow.blocks": (["complexity", "flow", "blocks"], ["block2", "block3"], {"feature_flow": 1, **CLAIMS}),
    "fv.tiny.reoptimize.steps": (
        ["fv", "tiny", "reoptimize", "steps"],
        12,
        {"reoptimize": 1, "reoptimize_figure": 1, **CLAIMS},
    ),
    "fv.tiny.critical_space.grid": (
        ["fv", "tiny", "critical_space", "grid"],
        5,
        {
            **{"critical_space": 1, "critical_space_figure": 1, "ifv": 1, "ifv_figures": 1},
            **{"reoptimize": 1, "reoptimize_figure": 1},
            **CLAIMS,
        },
    ),
    "fv.tiny.invert_with + cnn": (
        ["fv", "tiny", "invert_with"],
        ["cnn-pgd", "cnn"],
        {"cross_ifv": 1, "cross_ifv_figure": 1},
    ),
    "theory.baseline_gamma_points": (
        ["theory", "baseline_gamma_points"],
        4,
        {"theory_baselines": 2, "theory_figure_accuracy": 1, **CLAIMS},
    ),
    "experiments.planted.activations.batch_size": (["experiments", "planted", "activations", "batch_size"], 32, {}),
    "fv.tiny.jacobian_chunk": (["fv", "tiny", "jacobian_chunk"], 2, {}),
    "frequency.idcor.pairs + [block1, act]": (
        ["frequency", "idcor", "pairs"],
        [["block2", "act"], ["pool", "act"], ["block1", "act"]],
        {"idcor": 1, "idcor_table": 1, "idcor_figure": 1, **CLAIMS},
    ),
    "frequency.maps.models + cnn-pgd": (
        ["frequency", "maps", "models"],
        ["cnn", "cnn-pgd"],
        {"adversarial_maps": 1, "adversarial_maps_figure": 1, **CLAIMS},
    ),
}


def _with(config: dict, keys: list[str], value: Any) -> dict:
    config = copy.deepcopy(config)
    holder = config
    for key in keys[:-1]:
        holder = holder[key]
    holder[keys[-1]] = value
    return config


def _dry_run(workdir: Path, name: str, config: dict) -> dict[str, int]:
    path = workdir / "rows" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", str(path.relative_to(workdir)))
    assert result.returncode == 0, result.stderr[-3000:]
    return {rule: n for rule, n in planned_jobs(result).items() if rule != "all"}


SAMPLED = ["datasets.planted.n_test", "models.cnn-pgd.train.epochs", "complexity.dictionary.code_ridge"]


@pytest.fixture(scope="module")
def row_runs(dag_run: Path) -> dict[str, dict[str, int]]:
    """The real dry run of every table row, sampled leaf and a new seed, two at a time (each reads its own
    --configfile)."""
    base = yaml.safe_load((dag_run / "config/config.yaml").read_text())
    changes = {name: (keys, value) for name, (keys, value, _) in ROWS.items()}
    changes |= {path: (path.split("."), perturbed(dict(LEAVES)[path])) for path in SAMPLED}
    changes["seed"] = (["seed"], base["seed"] + 1)
    with ThreadPoolExecutor(2) as pool:
        futures = {
            name: pool.submit(_dry_run, dag_run, name, _with(base, keys, value))
            for name, (keys, value) in changes.items()
        }
        return {name: future.result() for name, future in futures.items()}


# Rows whose key other branches may read as well: their rules are required, these are not planned.
NOT_PLANNED = {
    "complexity.vinfo.ridge_scale": {
        *("dictionary", "codes", "robustness", "redundancy", "importance", "activations", "train", "data"),
    },
}


@pytest.mark.parametrize("row", list(ROWS))
def test_table_row_plans_what_the_issue_says(row_runs, row):
    _, _, expected = ROWS[row]
    summary = {"summary": 1} if expected else {}
    planned = row_runs[row]
    if row in NOT_PLANNED:
        assert {rule: planned.get(rule) for rule in expected} == expected, planned
        assert not set(planned) & NOT_PLANNED[row], planned
    else:
        assert planned == {**expected, **summary}


@pytest.mark.parametrize("row", [r for r in ROWS if "+" not in r])
def test_oracle_agrees_with_the_dry_run(oracle, row_runs, row):
    keys, value, _ = ROWS[row]
    assert oracle.planned(oracle.changed(".".join(keys), value)) == row_runs[row]


@pytest.mark.parametrize("path", SAMPLED)
def test_oracle_agrees_with_the_dry_run_on_sampled_leaves(oracle, row_runs, path):
    assert oracle.planned(oracle.changed(path, perturbed(dict(LEAVES)[path]))) == row_runs[path]


def test_seed_plans_every_rule(oracle, row_runs):
    assert row_runs["seed"] == oracle.planned(oracle.jobs)


# --- package modules -------------------------------------------------------------------------------------------

MODULES = sorted(p.relative_to(PACKAGE_ROOT).as_posix() for p in PACKAGE_ROOT.rglob("*.py"))


@functools.cache
def _closure(rule: str) -> frozenset[Path]:
    return frozenset(import_closure(SCRIPTS / f"{rule}.py"))


def reaching(module: str, rules: set[str]) -> set[str]:
    """The rules (of ``rules``) whose script's import closure reaches ``module``."""
    target = (PACKAGE_ROOT / module).resolve()
    return {rule for rule in rules if target in _closure(rule)}


def test_every_module_reaches_exactly_its_importers(oracle):
    """For every package module: the planned set of an edit is the reaching rules and their descendants; a
    module that no rule reaches plans nothing (it is workflow plumbing or a tool)."""
    rules = {job.rule.name for job in oracle.jobs}
    unreached = []
    for module in MODULES:
        reach = reaching(module, rules)
        if not reach:
            unreached.append(module)
            continue
        plan = oracle.planned([job for job in oracle.jobs if job.rule.name in reach])
        assert reach <= set(plan), module
    # The Snakefile-side helpers (keys, config checks, targets) run no stage: editing them replans nothing.
    assert {"keys.py", "names.py", "targets.py"} <= set(unreached), unreached


@pytest.mark.parametrize("module", ["frequency/idcor.py", "metrics/vinfo.py", "smk.py"])
def test_module_edit_plans_its_importers_and_their_descendants(oracle, dag_run, module):
    """The issue's rows: a real dry run after an edit plans exactly what the import closure predicts."""
    result = dry_run_after_edit(dag_run, module)
    assert result.returncode == 0, result.stderr[-3000:]
    rules = {job.rule.name for job in oracle.jobs}
    reach = reaching(module, rules)
    expected = oracle.planned([job for job in oracle.jobs if job.rule.name in reach])
    planned = {rule: n for rule, n in planned_jobs(result).items() if rule != "all"}
    assert planned == expected
    if module == "smk.py":  # it seeds every job: every rule reruns
        assert set(planned) == rules
