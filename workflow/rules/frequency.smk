# Frequency analysis (SPEC 3). Results path grammar of this branch:
#   results/frequency/models/{model}/masks.h5        data-set + per-image Fourier masks, bands     rule fourier_mask
#   results/frequency/compare/mask_bands.csv         band energies vs the reference model          rule fourier_mask_figures
#   results/frequency/compare/mask_summary.csv       accuracies, densities, class probe per model
#   results/frequency/compare/{bands_radial,bands_angular,masks}.png
#   results/frequency/models/{model}/maps.h5, maps.csv   essential vs adversarial maps, IdCor      rule adversarial_maps
#   results/frequency/models/{model}/maps.png                                                     rule adversarial_maps_figure
#   results/{experiment}/frequency/idcor/{a}--{b}.csv   IdCor of one layer pair                     rule idcor
#   results/{experiment}/frequency/idcor_layers.csv  IdCor between layer pairs, in config order      rule idcor_table
#   results/{experiment}/frequency/idcor_layers.png                                                rule idcor_figure
# Models come from `frequency.masks.models` / `frequency.maps.models`, experiments from `frequency.idcor`.

from featflow.frequency.spec import reference_problems

FREQ = CFG.get("frequency") or {}
LAYER = r"[A-Za-z0-9_.]+"  # a module name of named_modules(); IdCor pair files are {layer_a}--{layer_b}.csv
if reference_problems(CFG):
    raise ValueError("\n".join(reference_problems(CFG)))


rule fourier_mask:
    input:
        checkpoint="results/models/{model}.pt",
        data=lambda wc: f"results/data/{FREQ['masks']['dataset']}.h5",
    output:
        "results/frequency/models/{model}/masks.h5",
    log:
        "logs/fourier_mask/{model}.log",
    benchmark:
        "benchmarks/fourier_mask/{model}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(wc.model)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,  # thousands of forward/backward passes through the frozen network
    params:
        stage="frequency",
        spec=lambda wc: frequency_part("masks"),
        seed=SEED,
        code=script_hash("fourier_mask"),
    script:
        "../scripts/fourier_mask.py"


rule fourier_mask_figures:
    input:
        masks=expand("results/frequency/models/{model}/masks.h5", model=FREQ.get("masks", {}).get("models", [])),
    output:
        bands="results/frequency/compare/mask_bands.csv",
        summary="results/frequency/compare/mask_summary.csv",
        radial=report(
            "results/frequency/compare/bands_radial.png",
            caption="../report/frequency_bands.rst",
            category="Frequency",
            labels=figure_labels("radial"),
        ),
        angular=report(
            "results/frequency/compare/bands_angular.png",
            caption="../report/frequency_bands.rst",
            category="Frequency",
            labels=figure_labels("angular"),
        ),
        gallery=report(
            "results/frequency/compare/masks.png",
            caption="../report/frequency_masks.rst",
            category="Frequency",
            labels=figure_labels("gallery"),
        ),
    log:
        "logs/fourier_mask_figures/compare.log",
    benchmark:
        "benchmarks/fourier_mask_figures/compare.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # tables and plots only
    params:
        stage="frequency_plots",
        spec=lambda wc: {"models": FREQ["masks"]["models"]},
        seed=SEED,
        code=script_hash("fourier_mask_figures"),
        models=FREQ.get("masks", {}).get("models", []),
    script:
        "../scripts/fourier_mask_figures.py"


rule adversarial_maps:
    input:
        checkpoint="results/models/{model}.pt",
        data=lambda wc: f"results/data/{FREQ['maps']['dataset']}.h5",
    output:
        maps="results/frequency/models/{model}/maps.h5",
        table="results/frequency/models/{model}/maps.csv",
    log:
        "logs/adversarial_maps/{model}.log",
    benchmark:
        "benchmarks/adversarial_maps/{model}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(wc.model)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,  # PGD and per-image map optimization: many forward/backward passes
    params:
        stage="frequency",
        spec=lambda wc: frequency_part("maps"),
        seed=SEED,
        code=script_hash("adversarial_maps"),
    script:
        "../scripts/adversarial_maps.py"


rule adversarial_maps_figure:
    input:
        maps="results/frequency/models/{model}/maps.h5",
        table="results/frequency/models/{model}/maps.csv",
    output:
        figure=report(
            "results/frequency/models/{model}/maps.png",
            caption="../report/frequency_maps.rst",
            category="Frequency",
            labels=figure_labels("figure"),
        ),
    log:
        "logs/adversarial_maps_figure/{model}.log",
    benchmark:
        "benchmarks/adversarial_maps_figure/{model}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # one plot
    params:
        stage="frequency_plots",
        spec=lambda wc: {"model": wc.model},
        seed=SEED,
        code=script_hash("adversarial_maps_figure"),
    script:
        "../scripts/adversarial_maps_figure.py"


rule idcor:
    input:
        lambda wc: f"results/{wc.experiment}/activations/{FREQ['idcor']['split']}.h5",
    output:
        "results/{experiment}/frequency/idcor/{layer_a}--{layer_b}.csv",
    log:
        "logs/idcor/{experiment}_{layer_a}--{layer_b}.log",
    benchmark:
        "benchmarks/idcor/{experiment}_{layer_a}--{layer_b}.tsv"
    wildcard_constraints:
        layer_a=LAYER,
        layer_b=LAYER,
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # chunked nearest-neighbor search, repeated for every permutation
    params:
        stage="frequency",
        spec=lambda wc: pick(FREQ["idcor"], ("split", "max_samples", "n_perm", "fraction")),
        seed=SEED,
        code=script_hash("idcor"),
    script:
        "../scripts/idcor.py"


rule idcor_table:
    input:
        lambda wc: [f"results/{wc.experiment}/frequency/idcor/{a}--{b}.csv" for a, b in FREQ["idcor"]["pairs"]],
    output:
        "results/{experiment}/frequency/idcor_layers.csv",
    log:
        "logs/idcor_table/{experiment}.log",
    benchmark:
        "benchmarks/idcor_table/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,  # concatenates one row per pair
    params:
        stage="frequency",
        spec={},
        seed=SEED,
        code=script_hash("idcor_table"),
    script:
        "../scripts/idcor_table.py"


rule idcor_figure:
    input:
        "results/{experiment}/frequency/idcor_layers.csv",
    output:
        figure=report(
            "results/{experiment}/frequency/idcor_layers.png",
            caption="../report/frequency_idcor.rst",
            category="Frequency",
            labels=figure_labels("figure"),
        ),
    log:
        "logs/idcor_figure/{experiment}.log",
    benchmark:
        "benchmarks/idcor_figure/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,  # one plot
    params:
        stage="frequency_plots",
        spec=lambda wc: {"experiment": wc.experiment},
        seed=SEED,
        code=script_hash("idcor_figure"),
    script:
        "../scripts/idcor_figure.py"
