# Plumbing only: config validation, wildcard constraints, target lists, stage params.
import os
from pathlib import Path

# Every job imports the package from this checkout's src/ too (scripts run in a fresh Python, maybe in a conda
# env without featflow installed): no install path is baked into any environment file.
_PATHS = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != SRC]
os.environ.update(PYTHONPATH=os.pathsep.join([SRC, *_PATHS]))

from featflow.names import checked
from featflow.repro import script_code
from featflow.targets import enabled, figures, targets

# Validated before any job runs: a bad key, type, range, missing data path or layer name stops here.
CFG = checked(config)
SEED = CFG["seed"]
ENV = "../../envs/featflow.yaml"


def script_hash(rule):
    """The code part of a rule's cache key: its script and every package file the script's imports reach."""
    return script_code(Path(workflow.basedir) / "workflow" / "scripts" / f"{rule}.py")


def _names(section):
    return "|".join(sorted(CFG.get(section, {}))) or "__none__"


wildcard_constraints:
    dataset=_names("datasets"),
    model=_names("models"),
    experiment=_names("experiments"),
    split="train|test",


def experiment(name):
    return CFG["experiments"][name]


def experiment_model(wc):
    """The checkpoint of the experiment's model."""
    return f"results/models/{experiment(wc.experiment)['model']}.pt"


def experiment_data(wc):
    """The data set file of the experiment's evaluation data."""
    return f"results/data/{experiment(wc.experiment)['dataset']}.h5"


def complexity_spec(wc):
    """The complexity section plus the experiment it runs on."""
    return {"complexity": CFG.get("complexity"), "experiment": experiment(wc.experiment)}


def frequency_part(part):
    """A frequency sub-section without its model list: adding a model does not rerun the others."""
    return {k: v for k, v in CFG["frequency"][part].items() if k != "models"}


def activations_inputs(wc):
    """Model and data for one extraction job, or the shard files to merge (activations.shards > 1)."""
    exp = experiment(wc.experiment)
    shards = exp["activations"]["shards"]
    if shards == 1:
        return {
            "checkpoint": f"results/models/{exp['model']}.pt",
            "data": f"results/data/{exp['dataset']}.h5",
        }
    return {"shards": [f"results/{wc.experiment}/activations/shards/{wc.split}_{shard}.h5" for shard in range(shards)]}


# Final outputs of the run, the default target: every enabled branch's, from featflow.targets (tested on configs).
TARGETS = targets(CFG)


def figure_labels(name):
    """Report labels of the figure output ``name``: this run's headline numbers, read from the PNG at report time."""
    from featflow.store import figure_numbers

    def labels(wildcards, output):
        numbers = figure_numbers(output[name])
        return {"figure": name, **{key: str(value) for key, value in numbers.items()}}

    return labels
