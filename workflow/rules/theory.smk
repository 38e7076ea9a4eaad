# Feature learning theory (SPEC 4; Shi, Wei & Liang). Results path grammar of this branch:
#   results/theory/{dataset}/network.h5    network curves (seeds x steps), snapshots   rule theory_train
#   results/theory/{dataset}/baselines.h5  random features, NTK curves; RBF SVM         rule theory_baselines
#   results/theory/{dataset}/alignment.h5  cosines to +-sum_A M_j, MDS maps, probes     rule theory_alignment
#   results/theory/accuracy.csv, results/theory/figures/accuracy.png                   rule theory_figure_accuracy
#   results/theory/figures/alignment.png                                               rule theory_figure_alignment
# {dataset} is one of the two shi data sets named by `theory.structured` and `theory.unstructured`.

from featflow.theory.spec import check_theory_config

# Names checked when the rules are parsed; no theory section: no theory job (featflow.targets).
THEORY = check_theory_config(CFG).to_dict() if enabled(CFG, "theory") else {}
THEORY_SETS = [THEORY["structured"], THEORY["unstructured"]] if THEORY else []
THEORY_FAMILIES = ["structured", "unstructured"]


rule theory_train:
    input:
        data="results/data/{dataset}.h5",
    output:
        "results/theory/{dataset}/network.h5",
    log:
        "logs/theory_train/{dataset}.log",
    benchmark:
        "benchmarks/theory_train/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,  # two full-batch steps and a linear model in numpy
    params:
        stage="theory",
        spec=theory_spec("theory_train"),
        seed=SEED,
        code=script_hash("theory_train"),
    script:
        "../scripts/theory_train.py"


rule theory_baselines:
    input:
        data="results/data/{dataset}.h5",
    output:
        "results/theory/{dataset}/baselines.h5",
    log:
        "logs/theory_baselines/{dataset}.log",
    benchmark:
        "benchmarks/theory_baselines/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=0,  # numpy kernels and scikit-learn SVM
    params:
        stage="theory",
        spec=theory_spec("theory_baselines"),
        seed=SEED,
        code=script_hash("theory_baselines"),
    script:
        "../scripts/theory_baselines.py"


rule theory_alignment:
    input:
        network="results/theory/{dataset}/network.h5",
        data="results/data/{dataset}.h5",
    output:
        "results/theory/{dataset}/alignment.h5",
    log:
        "logs/theory_alignment/{dataset}.log",
    benchmark:
        "benchmarks/theory_alignment/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
        gpu=0,  # cosines, a small MDS and logistic probes
    params:
        stage="theory",
        spec=theory_spec("theory_alignment"),
        seed=SEED,
        code=script_hash("theory_alignment"),
    script:
        "../scripts/theory_alignment.py"


rule theory_figure_accuracy:
    input:
        networks=expand("results/theory/{dataset}/network.h5", dataset=THEORY_SETS),
        baselines=expand("results/theory/{dataset}/baselines.h5", dataset=THEORY_SETS),
    output:
        figure=report(
            "results/theory/figures/accuracy.png",
            caption="../report/theory_accuracy.rst",
            category="Theory",
            labels=figure_labels("figure"),
        ),
        table="results/theory/accuracy.csv",
    log:
        "logs/theory_figure_accuracy/all.log",
    benchmark:
        "benchmarks/theory_figure_accuracy/all.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,  # plotting
    params:
        stage="theory_plots",
        spec={},
        seed=SEED,
        code=script_hash("theory_figure_accuracy"),
        families=THEORY_FAMILIES,
    script:
        "../scripts/theory_figure_accuracy.py"


rule theory_figure_alignment:
    input:
        alignments=expand("results/theory/{dataset}/alignment.h5", dataset=THEORY_SETS),
    output:
        figure=report(
            "results/theory/figures/alignment.png",
            caption="../report/theory_alignment.rst",
            category="Theory",
            labels=figure_labels("figure"),
        ),
    log:
        "logs/theory_figure_alignment/all.log",
    benchmark:
        "benchmarks/theory_figure_alignment/all.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,  # plotting
    params:
        stage="theory_plots",
        spec={},
        seed=SEED,
        code=script_hash("theory_figure_alignment"),
        families=THEORY_FAMILIES,
    script:
        "../scripts/theory_figure_alignment.py"
