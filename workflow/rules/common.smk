# Plumbing only: config validation, wildcard constraints, target lists, stage params.
import os
from pathlib import Path

# Every job imports the package from this checkout's src/ too (scripts run in a fresh Python, maybe in a conda
# env without featflow installed): no install path is baked into any environment file. Conda jobs (--sdm conda)
# keep PYTHONPATH only with --conda-not-block-search-path-envvars, which both profiles set (without it, a script
# job still finds src/ at the end of its sys.path: Snakemake appends its own process's sys.path, where the
# Snakefile put src/; tests/workflow/test_conda_jobs.py).
_PATHS = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != SRC]
os.environ.update(PYTHONPATH=os.pathsep.join([SRC, *_PATHS]))

from featflow.config import OWN_ARCHS, dictionary_of
from featflow.names import checked
from featflow.keys import keyed, pick
from featflow.repro import script_code
from featflow.targets import enabled, figures, quality_tables, targets

# Validated before any job runs: a bad key, type, range, missing data path or layer name stops here.
CFG = checked(config)
SEED = CFG["seed"]
ENV = "../../envs/featflow.yaml"


def script_hash(rule):
    """The code part of a rule's cache key: its script and every package file the script's imports reach."""
    return script_code(HERE / "workflow" / "scripts" / f"{rule}.py")


def _names(section):
    return "|".join(sorted(CFG.get(section, {}))) or "__none__"


wildcard_constraints:
    dataset=_names("datasets"),
    model=_names("models"),
    experiment=_names("experiments"),
    split="train|test",


def data_sources(wc):
    """The idx files an idx data set reads (a changed file reruns its data job); folder kinds are indexed by path."""
    from featflow import idx

    spec = CFG["datasets"][wc.dataset]
    if spec["kind"] != "idx":
        return []
    folder = idx.folder(spec.get("path"))
    found = [idx.find(folder, s, k) for s in idx.SPLIT_PREFIX for k in idx.KINDS]
    # Relative inside the working directory (the shipped files of this checkout), so that a copy or a move of
    # the checkout keeps the same input paths and does not rerun the data job.
    here = Path.cwd().resolve()
    return [
        str(f.resolve().relative_to(here)) if f.resolve().is_relative_to(here) else str(f)
        for f in found
        if f is not None
    ]


def model_threads(model):
    """Threads of a job that runs ``model``'s network. featflow's own small networks (the default's) have ops too
    small for a second intra-op thread (mean load 0.75-1.4 cores at 2 threads in the default run's benchmark
    files), so their jobs take one core each and two run side by side; torchvision networks take two (more with
    --set-threads, e.g. on a cluster)."""
    return 1 if CFG["models"][model]["arch"] in OWN_ARCHS else 2


def experiment(name):
    return CFG["experiments"][name]


def experiment_model(wc):
    """The checkpoint of the experiment's model."""
    return f"results/models/{experiment(wc.experiment)['model']}.pt"


def experiment_data(wc):
    """The data set file of the experiment's evaluation data."""
    return f"results/data/{experiment(wc.experiment)['dataset']}.h5"


# Cache keys (featflow.keys): each rule's params.spec holds the config values its stage reads, nothing else; the
# knobs that trade memory or speed only reach the script but stay out of the key (tests/workflow/test_knobs.py).
ACTIVATION_KNOBS = ("activations.batch_size", "activations.workers", "activations.shards")
FV_KNOBS = ("jacobian_chunk", "sample_chunk")
MODEL_KNOBS = ("download",)
COMPLEXITY_KNOBS = ("shards",)  # codes and robustness jobs per experiment (tests/unit/test_complexity_shards.py)


def experiment_spec(name):
    """What an extraction reads of an experiment: its model, data, layers, pooling, spatial layers, sample cap."""
    paths = ("model", "dataset", "layers", "activations.pool", "activations.spatial", "activations.max_samples")
    return keyed(experiment(name), paths, ACTIVATION_KNOBS)


def trained_spec(model):
    """What a training run reads of a model: its config entry without train.checkpoints (which epochs are saved
    along the way changes no run: adding one trains only that checkpoint, workflow/rules/temporal.smk)."""
    spec = dict(CFG["models"][model])
    spec["train"] = {k: v for k, v in spec["train"].items() if k != "checkpoints"}
    return keyed(spec, neutral=MODEL_KNOBS)  # download: the same weights, fetched or read from the hub cache


# fv.<name> values read by each FV/IFV rule's stage (featflow.fv.run, featflow.ifv.run, featflow.ifv.cross).
FV_FEATURES = ("model", "layer", "n_f", "aggregation", "dtype")
FV_RENDER = ("parametrization", "decorrelate")
FV_KEYS = {
    "fv_targets": (*FV_FEATURES, "n_sparse", "include_canonical"),
    "fv_optimize": (*FV_FEATURES, *FV_RENDER, "spectrum_images", "k", "lr", "adam_steps", "lbfgs_steps", "batch_size"),
    "jacobian": (*FV_FEATURES, *FV_RENDER, "store_jacobian"),
    "critical_space": (
        "model",
        "layer",
        *(f"critical_space.{key}" for key in ("n_samples", "rho_min", "rho_max", "grid")),
    ),
    "ifv": ("model", "layer", "k", "stationarity", "critical_space.select"),  # select: the space IFV uses
    "reoptimize": (*FV_FEATURES, *FV_RENDER, "k", "lr", "batch_size", "reoptimize"),
    "cross_ifv": (*FV_FEATURES, *FV_RENDER, "k"),
    "cross_ifv_figure": ("model",),
}


def fv_data(wc):
    """The model's data set file where the FV experiment's parametrization reads it (maco's spectrum), else none."""
    fv = CFG["fv"][wc.fv]
    if fv["parametrization"] != "maco":
        return []
    return f"results/data/{CFG['models'][fv['model']]['dataset']}.h5"


def fv_spec(rule):
    """The key of an FV/IFV rule: the fv.<name> values its stage reads (chunk sizes unkeyed)."""
    neutral = FV_KNOBS if rule in ("jacobian", "cross_ifv") else ()
    return lambda wc: keyed(CFG["fv"][wc.fv], FV_KEYS[rule], neutral)


# complexity values and experiment values read by each complexity stage (featflow.complexity.<stage>); CODES are
# the encoder's (featflow.dictionary.files.read: the method and the NNLS keys), which the V-information's second
# seed, the robustness codes, the pictures and the flow use too.
CODES = ("dictionary.method", "dictionary.code_iterations", "dictionary.code_ridge", "dictionary.code_tol")
CX_KEYS = {
    "dictionary": (("dictionary",), ("layers",)),
    "codes": (CODES, ()),
    "complexity": (("split", "vinfo", *CODES), ()),
    "redundancy": (("redundancy",), ()),
    "robustness": (("split", "robustness", *CODES), ("activations.pool",)),
    "importance": (("dictionary.method",), ()),
    "feature_table": ((), ()),
    "complexity_figures": (("split", "figures", "dictionary.method", "dictionary.code_ridge"), ()),
    "dictionary_quality": (CODES, ()),
    "meta_features": (("split", "meta_features"), ()),  # featflow.complexity.meta.run_meta_features
    "feature_pictures": (("split", "pictures", "dictionary"), ("activations.pool",)),  # featflow.fv.atoms.run_pictures
    # featflow.complexity.flow.run_flow: the vinfo split and ridge, the blocks, the encoder (ablated codes);
    # images batched as extracted
    "feature_flow": (
        ("split", "vinfo.test_fraction", "vinfo.ridge_scale", "flow.blocks", *CODES),
        ("activations.pool",),
    ),
}
CX_KEYS["codes_shard"] = CX_KEYS["codes"]
CX_KEYS["robustness_shard"] = CX_KEYS["robustness"]
# complexity and experiment values a complexity stage reads that trade speed or memory only (out of its key)
CX_KNOBS = {
    "feature_flow": ((), ("activations.batch_size", "activations.workers")),
    **dict.fromkeys(("codes", "codes_shard", "robustness", "robustness_shard"), (COMPLEXITY_KNOBS, ())),
}


def cx_shards():
    """complexity.shards: codes and robustness jobs per experiment (read when the DAG is built)."""
    return CFG["complexity"]["shards"] if CFG.get("complexity") else 1


def codes_inputs(wc):
    """One job's inputs, or with complexity.shards > 1 the shard files it merges."""
    if cx_shards() > 1:
        shards = [f"results/{wc.experiment}/complexity/shards/codes_{wc.split}_{s}.h5" for s in range(cx_shards())]
        return {"shards": shards}
    return {
        "dictionary": f"results/{wc.experiment}/complexity/dictionary.h5",
        "activations": f"results/{wc.experiment}/activations/{wc.split}.h5",
        "checkpoint": experiment_model(wc),
    }


def robustness_inputs(wc):
    """One job's inputs, or with complexity.shards > 1 the shard files it merges."""
    if cx_shards() > 1:
        return {"shards": [f"results/{wc.experiment}/complexity/shards/robustness_{s}.h5" for s in range(cx_shards())]}
    return {
        "dictionary": f"results/{wc.experiment}/complexity/dictionary.h5",
        "checkpoint": experiment_model(wc),
        "data": experiment_data(wc),
    }


def experiment_complexity(name):
    """The complexity section as experiment ``name``'s jobs read it: its dictionary changes merged in, the sections
    of the other dictionary methods (the mappings of complexity.dictionary, one per method) left out."""
    own = dictionary_of(CFG, name)
    mine = {k: v for k, v in own.items() if not isinstance(v, dict) or k == own["method"]}
    return {**CFG["complexity"], "dictionary": mine}


def dictionary_file(wc):
    """The file the experiment's dictionary method reads (its section's ``path``: method file), so that a changed
    file reruns the dictionary job."""
    own = dictionary_of(CFG, wc.experiment)
    path = (own.get(own["method"]) or {}).get("path")
    return [path] if path else []


def complexity_spec(rule):
    """The key of a complexity rule: the complexity values and experiment values its stage reads."""
    section, exp = CX_KEYS[rule]
    cx_knobs, exp_knobs = CX_KNOBS.get(rule, ((), ()))
    return lambda wc: {
        "complexity": keyed(experiment_complexity(wc.experiment), section, cx_knobs),
        "experiment": keyed(experiment(wc.experiment), exp, exp_knobs),
    }


# theory values read by each theory stage (featflow.theory.run): the shared initialization, then its own.
THEORY_SETUP = ("m", "seeds", "eta1", "eta2", "smooth1", "smooth2", "sigma_a")
THEORY_KEYS = {
    "theory_train": (
        *THEORY_SETUP,
        *("steps", "lr", "lr_scale", "feature_lr_scale", "weight_decay", "eval_every"),
        *("baseline_C_range", "baseline_C_points", "baseline_folds"),
    ),
    "theory_baselines": (
        *THEORY_SETUP,
        *("steps", "eval_every", "baseline_lr_scale", "weight_decay"),
        *("baseline_C_range", "baseline_C_points", "baseline_gamma_range", "baseline_gamma_points", "baseline_folds"),
    ),
    # the network it reads: its setup keys rerun theory_train (and so this rule) anyway; provenance names them
    "theory_alignment": (*THEORY_SETUP, "snapshot_seeds"),
}


def theory_spec(rule):
    """The key of a theory rule: the theory values its stage reads."""
    return lambda wc: pick(CFG["theory"], THEORY_KEYS[rule])


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
    """Report labels of the figure output ``name``: this run's headline numbers, read from the PNG at report time,
    and the verdicts of the claims it shows (results/claims.csv), so a figure that disagrees with the paper says so."""
    from featflow.store import figure_numbers
    from featflow.summary import paper_labels

    def labels(wildcards, output):
        numbers = figure_numbers(output[name])
        verdicts = paper_labels("results/claims.csv", output[name])
        return {"figure": name, **{key: str(value) for key, value in numbers.items()}, **verdicts}

    return labels
