# featflow: one DAG from data to features, their complexity, their visualizations and their frequencies.
#
# Results path grammar (every file is written atomically; HDF5 files carry provenance attributes):
#   results/data/{dataset}.h5                        materialized data set (train/test splits, factors)
#   results/models/{model}.pt                        checkpoint: state_dict + spec + accuracies
#   results/models/{model}/epoch_{epoch}.pt          the same run after {epoch} epochs (train.checkpoints)
#   results/{experiment}/activations/{split}.h5      pooled activations of the experiment's layers
#   results/{experiment}/complexity/...              dictionary, codes, metrics, feature table, figures (complexity.smk)
#   results/fv/{fv}/*.h5, figures/*.png              FV / IFV of an `fv:` experiment (see workflow/rules/fv.smk)
#   results/frequency/...                            Fourier masks, adversarial maps, IdCor (frequency.smk)
#   results/theory/...                               Shi et al. networks vs fixed features (theory.smk)
#   results/report.html                              `make report`: every figure with its caption
# Logs: logs/{rule}/{wildcards}.log; benchmarks: benchmarks/{rule}/{wildcards}.tsv.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
# This checkout: the folder of this Snakefile, also when another workflow uses it as a module (`module featflow:
# snakefile: <checkout>/Snakefile`; workflow.basedir is then the other workflow's folder). The package is
# imported from its src/ (see PYTHONPATH in workflow/rules/common.smk).
HERE = Path(workflow.current_basedir.get_path_or_uri(secret_free=True))
SRC = str(HERE / "src")
sys.path.insert(0, SRC)
from featflow.config import load_yaml

# As a module, the including workflow passes the config (`config: config`); run on its own, the default config,
# unless --configfile names others: a preset then runs alone (its files replace this one, they are not merged
# into it). Snakemake's own loader reports a YAML syntax error without file or line: read the file ourselves first.
AS_MODULE = Path(workflow.main_snakefile).resolve() != Path(workflow.snakefile).resolve()
if not workflow.overwrite_configfiles and not AS_MODULE:
    load_yaml("config/config.yaml")

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/fv.smk"
include: "workflow/rules/ifv.smk"
include: "workflow/rules/frequency.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/temporal.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/report.smk"  # last: gathers every branch's figures


# Jobs of a few seconds (figures, tables, the summary; no GPU, runtime <= 10 min) run where Snakemake runs (the
# login node under profiles/slurm), not as queued cluster jobs of their own (tests/workflow/test_slurm_dag.py);
# their jobs import no torch (tests/unit/test_imports.py).
localrules:
    feature_table,
    complexity_figures,
    meta_features,
    fourier_mask_figures,
    adversarial_maps_figure,
    idcor_table,
    idcor_figure,
    fv_figure,
    ifv_figures,
    reoptimize_figure,
    critical_space_figure,
    cross_ifv_figure,
    temporal_figures,
    theory_figure_accuracy,
    theory_figure_alignment,
    claims,
    summary,


report: "results/summary.rst"


rule all:
    default_target: True
    input:
        TARGETS,
