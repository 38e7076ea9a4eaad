# Feature visualization (SPEC 2.1). Results path grammar of the FV/IFV branch (fv.smk, ifv.smk):
#   results/fv/{fv}/targets.h5               sparse + canonical targets x (n, n_f)           rule fv_targets
#   results/fv/{fv}/realizations.h5          FV realizations: params, images, responses y     rule fv_optimize
#   results/fv/{fv}/jacobian.h5              Dy Dy^T (and Dy) of every realization            rule jacobian
#   results/fv/{fv}/critical_space.h5        critical spaces of Algorithm 1 over rho          rule critical_space
#   results/fv/{fv}/ifv.h5, ifv.csv          predicted objectives x*, angular distances       rule ifv
#   results/fv/{fv}/ifv_medians.csv          median angles per target kind, bootstrap CIs     rule ifv
#   results/fv/{fv}/reoptimize.h5            SSIM after re-optimization per objective         rule reoptimize
#   results/fv/{fv}/figures/*.png            realizations, angular, alpha, ssim               figure rules
# {fv} is a name under the config's `fv:` section.


wildcard_constraints:
    fv="|".join(sorted(CFG.get("fv", {}))) or "__none__",
    other="|".join(sorted(CFG["models"])) or "__none__",


rule fv_targets:
    input:
        checkpoint=lambda wc: f"results/models/{CFG['fv'][wc.fv]['model']}.pt",
    output:
        "results/fv/{fv}/targets.h5",
    log:
        "logs/fv_targets/{fv}.log",
    benchmark:
        "benchmarks/fv_targets/{fv}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # a projection per target: no accelerator needed
    params:
        stage="fv",
        spec=fv_spec("fv_targets"),
        seed=SEED,
        code=script_hash("fv_targets"),
    script:
        "../scripts/fv_targets.py"


rule fv_optimize:
    input:
        checkpoint=lambda wc: f"results/models/{CFG['fv'][wc.fv]['model']}.pt",
        targets="results/fv/{fv}/targets.h5",
        data=fv_data,
    output:
        "results/fv/{fv}/realizations.h5",
    log:
        "logs/fv_optimize/{fv}.log",
    benchmark:
        "benchmarks/fv_optimize/{fv}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(CFG["fv"][wc.fv]["model"])
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,  # thousands of batched forward/backward passes: the costliest FV step
    params:
        stage="fv",
        spec=fv_spec("fv_optimize"),
        seed=SEED,
        code=script_hash("fv_optimize"),
    script:
        "../scripts/fv_optimize.py"


rule fv_figure:
    input:
        "results/fv/{fv}/realizations.h5",
    output:
        realizations=report(
            "results/fv/{fv}/figures/realizations.png",
            caption="../report/fv_realizations.rst",
            category="FV",
            labels=figure_labels("realizations"),
        ),
    log:
        "logs/fv_figure/{fv}.log",
    benchmark:
        "benchmarks/fv_figure/{fv}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
        gpu=0,  # plotting
    params:
        stage="fv_plots",
        spec={},
        seed=SEED,
        code=script_hash("fv_figure"),
    script:
        "../scripts/fv_figure.py"
