# Inverse feature visualization (SPEC 2.2-2.5); the path grammar is at the top of fv.smk.


rule jacobian:
    input:
        checkpoint=lambda wc: f"results/models/{CFG['fv'][wc.fv]['model']}.pt",
        realizations="results/fv/{fv}/realizations.h5",
    output:
        "results/fv/{fv}/jacobian.h5",
    log:
        "logs/jacobian/{fv}.log",
    benchmark:
        "benchmarks/jacobian/{fv}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(CFG["fv"][wc.fv]["model"])
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,  # n_f batched backward passes per realization
    params:
        stage="ifv",
        spec=fv_spec("jacobian"),
        seed=SEED,
        code=script_hash("jacobian"),
    script:
        "../scripts/jacobian.py"


rule critical_space:
    input:
        "results/fv/{fv}/jacobian.h5",
    output:
        "results/fv/{fv}/critical_space.h5",
    log:
        "logs/critical_space/{fv}.log",
    benchmark:
        "benchmarks/critical_space/{fv}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,  # small n_f x n_f decompositions, sequential merges (the paper runs it on the CPU too)
    params:
        stage="ifv",
        spec=fv_spec("critical_space"),
        seed=SEED,
        code=script_hash("critical_space"),
    script:
        "../scripts/critical_space.py"


rule ifv:
    input:
        realizations="results/fv/{fv}/realizations.h5",
        jacobian="results/fv/{fv}/jacobian.h5",
        critical="results/fv/{fv}/critical_space.h5",
    output:
        h5="results/fv/{fv}/ifv.h5",
        table="results/fv/{fv}/ifv.csv",
        medians="results/fv/{fv}/ifv_medians.csv",
    log:
        "logs/ifv/{fv}.log",
    benchmark:
        "benchmarks/ifv/{fv}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,  # batched n_f x n_f eigendecompositions
    params:
        stage="ifv",
        spec=fv_spec("ifv"),
        seed=SEED,
        code=script_hash("ifv"),
    script:
        "../scripts/ifv.py"


rule reoptimize:
    input:
        checkpoint=lambda wc: f"results/models/{CFG['fv'][wc.fv]['model']}.pt",
        realizations="results/fv/{fv}/realizations.h5",
        ifv="results/fv/{fv}/ifv.h5",
    output:
        "results/fv/{fv}/reoptimize.h5",
    log:
        "logs/reoptimize/{fv}.log",
    benchmark:
        "benchmarks/reoptimize/{fv}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(CFG["fv"][wc.fv]["model"])
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,  # four Adam re-optimizations per realization
    params:
        stage="ifv",
        spec=fv_spec("reoptimize"),
        seed=SEED,
        code=script_hash("reoptimize"),
    script:
        "../scripts/reoptimize.py"


rule ifv_figures:
    input:
        h5="results/fv/{fv}/ifv.h5",
        medians="results/fv/{fv}/ifv_medians.csv",
    output:
        angular=report(
            "results/fv/{fv}/figures/angular.png",
            caption="../report/ifv_angular.rst",
            category="IFV",
            labels=figure_labels("angular"),
        ),
        alpha=report(
            "results/fv/{fv}/figures/alpha.png",
            caption="../report/ifv_alpha.rst",
            category="IFV",
            labels=figure_labels("alpha"),
        ),
    log:
        "logs/ifv_figures/{fv}.log",
    benchmark:
        "benchmarks/ifv_figures/{fv}.tsv"
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
        code=script_hash("ifv_figures"),
    script:
        "../scripts/ifv_figures.py"


rule reoptimize_figure:
    input:
        ifv="results/fv/{fv}/ifv.h5",
        reoptimize="results/fv/{fv}/reoptimize.h5",
    output:
        ssim=report(
            "results/fv/{fv}/figures/ssim.png",
            caption="../report/ifv_ssim.rst",
            category="IFV",
            labels=figure_labels("ssim"),
        ),
    log:
        "logs/reoptimize_figure/{fv}.log",
    benchmark:
        "benchmarks/reoptimize_figure/{fv}.tsv"
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
        code=script_hash("reoptimize_figure"),
    script:
        "../scripts/reoptimize_figure.py"


rule critical_space_figure:
    input:
        critical="results/fv/{fv}/critical_space.h5",
        ifv="results/fv/{fv}/ifv.h5",
        # the aggregation and the data set's classes: the trivial solutions are drawn only at the logits
        realizations="results/fv/{fv}/realizations.h5",
        data=lambda wc: f"results/data/{CFG['models'][CFG['fv'][wc.fv]['model']]['dataset']}.h5",
    output:
        critical_space=report(
            "results/fv/{fv}/figures/critical_space.png",
            caption="../report/ifv_critical_space.rst",
            category="IFV",
            labels=figure_labels("critical_space"),
        ),
    log:
        "logs/critical_space_figure/{fv}.log",
    benchmark:
        "benchmarks/critical_space_figure/{fv}.tsv"
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
        # classes the experiment's model never saw in training: their e_c are expected in the complement
        excluded=lambda wc: CFG["datasets"][CFG["models"][CFG["fv"][wc.fv]["model"]]["dataset"]].get(
            "exclude_classes", []
        ),
        seed=SEED,
        code=script_hash("critical_space_figure"),
    script:
        "../scripts/critical_space_figure.py"


# Beyond the paper: invert experiment {fv}'s realizations with another model {other} at the same layer.
rule cross_ifv:
    input:
        checkpoint=lambda wc: f"results/models/{wc.other}.pt",
        realizations="results/fv/{fv}/realizations.h5",
    output:
        "results/fv/{fv}/cross/{other}.h5",
    log:
        "logs/cross_ifv/{fv}_{other}.log",
    benchmark:
        "benchmarks/cross_ifv/{fv}_{other}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(wc.other)
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,  # n_f batched backward passes per realization through the other model
    params:
        stage="ifv",
        spec=fv_spec("cross_ifv"),
        seed=SEED,
        code=script_hash("cross_ifv"),
    script:
        "../scripts/cross_ifv.py"


rule cross_ifv_figure:
    input:
        "results/fv/{fv}/cross/{other}.h5",
    output:
        cross=report(
            "results/fv/{fv}/figures/cross_{other}.png",
            caption="../report/ifv_cross.rst",
            category="IFV",
            labels=figure_labels("cross"),
        ),
    log:
        "logs/cross_ifv_figure/{fv}_{other}.log",
    benchmark:
        "benchmarks/cross_ifv_figure/{fv}_{other}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
        gpu=0,  # plotting
    params:
        stage="fv_plots",
        spec=fv_spec("cross_ifv_figure"),
        seed=SEED,
        code=script_hash("cross_ifv_figure"),
    script:
        "../scripts/cross_ifv_figure.py"
