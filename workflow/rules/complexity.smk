# Complexity branch (SPEC 1): an overcomplete dictionary (featflow.dictionary: nmf, seminmf, topk, file) on the
# penultimate layer (or complexity.dictionary.layer), then per-feature
# V-information complexity, redundancy, robustness, importance, the feature table and figures.
# Results path grammar (CX = results/{experiment}/complexity):
#   CX/dictionary.h5                  atoms D (k, d) and the method's arrays, train codes, relative error, accuracy
#                                     with the reconstruction
#   CX/codes_{split}.h5               codes of a split with D* fixed (batched NNLS)
#   CX/shards/codes_{split}_{shard}.h5, CX/shards/robustness_{shard}.h5   temporary slices merged into codes and
#                                     robustness when complexity.shards > 1 (scale-out)
#   CX/vinfo.h5, CX/factors.csv|.parquet   I_V (L, k), complexity K; I_V and K of the planted factors
#   CX/redundancy.h5, CX/robustness.h5, CX/importance.h5
#   CX/features.csv|.parquet          the feature table (a row per feature)
#   CX/features.html                  the feature table with the run's facts, shown inline in the report
#   CX/quality.csv|.html              the dictionary's quality: R^2, mean L0, dead features, accuracy with the
#                                     reconstruction, atoms matched across two seeds
#   CX/figures/{importance,iv_curves,relations,umap,top_images}.png
#   CX/pictures.h5, CX/figures/pictures.png   FV pictures of the simplest and most complex atoms d_i (the FV
#                                     branch's featflow.fv.atoms) beside their top-activating images
#   CX/flow.h5, CX/flow.csv, CX/figures/flow.png   feature flow: code retention of every feature with each
#                                     residual block's main branch zeroed; I_V and CKA of every feature from each
#                                     block's skip path and main branch (complexity.flow.experiments only)
CX_CFG = CFG.get("complexity")
CX_EXPERIMENTS = list(CX_CFG["experiments"]) if CX_CFG else []
for _name in CX_EXPERIMENTS:
    if _name not in CFG["experiments"]:
        raise ValueError(
            f"config key 'complexity.experiments': '{_name}' is not an experiment; "
            f"expected one of {sorted(CFG['experiments'])}"
        )
CX_SPLIT = CX_CFG["split"] if CX_CFG else "test"


rule dictionary:
    input:
        activations="results/{experiment}/activations/train.h5",
        checkpoint=experiment_model,
        file=dictionary_file,
    output:
        "results/{experiment}/complexity/dictionary.h5",
    log:
        "logs/dictionary/{experiment}.log",
    benchmark:
        "benchmarks/dictionary/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # NMF / Semi-NMF iterations and SAE steps are matrix products: an accelerator helps at paper scale
    params:
        stage="dictionary",
        spec=complexity_spec("dictionary"),
        seed=SEED,
        code=script_hash("dictionary"),
    script:
        "../scripts/dictionary.py"


rule codes_shard:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        activations="results/{experiment}/activations/{split}.h5",
        checkpoint=experiment_model,
    output:
        temp("results/{experiment}/complexity/shards/codes_{split}_{shard}.h5"),
    log:
        "logs/codes_shard/{experiment}_{split}_{shard}.log",
    benchmark:
        "benchmarks/codes_shard/{experiment}_{split}_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # batched NNLS: matrix products over the shard's samples
    params:
        stage="dictionary",
        spec=complexity_spec("codes_shard"),
        seed=SEED,
        code=script_hash("codes_shard"),
    script:
        "../scripts/codes_shard.py"


rule codes:
    input:
        unpack(codes_inputs),
    output:
        "results/{experiment}/complexity/codes_{split}.h5",
    log:
        "logs/codes/{experiment}_{split}.log",
    benchmark:
        "benchmarks/codes/{experiment}_{split}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=lambda wc: int(cx_shards() == 1),  # batched NNLS over all samples; merging shards needs no GPU
    params:
        stage="dictionary",
        spec=complexity_spec("codes"),
        seed=SEED,
        code=script_hash("codes"),
    script:
        "../scripts/codes.py"


rule complexity:
    input:
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        data=experiment_data,
        dictionary="results/{experiment}/complexity/dictionary.h5",
    output:
        vinfo="results/{experiment}/complexity/vinfo.h5",
        factors="results/{experiment}/complexity/factors.csv",
        factors_parquet="results/{experiment}/complexity/factors.parquet",
    log:
        "logs/complexity/{experiment}.log",
    benchmark:
        "benchmarks/complexity/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,  # one small float64 factorization per layer
    params:
        stage="complexity",
        spec=complexity_spec("complexity"),
        seed=SEED,
        code=script_hash("complexity"),
    script:
        "../scripts/complexity.py"


rule redundancy:
    input:
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        dictionary="results/{experiment}/complexity/dictionary.h5",
    output:
        "results/{experiment}/complexity/redundancy.h5",
    log:
        "logs/redundancy/{experiment}.log",
    benchmark:
        "benchmarks/redundancy/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # (d x d) Gram products only
    params:
        stage="complexity",
        spec=complexity_spec("redundancy"),
        seed=SEED,
        code=script_hash("redundancy"),
    script:
        "../scripts/redundancy.py"


rule robustness_shard:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        checkpoint=experiment_model,
        data=experiment_data,
    output:
        temp("results/{experiment}/complexity/shards/robustness_{shard}.h5"),
    log:
        "logs/robustness_shard/{experiment}_{shard}.log",
    benchmark:
        "benchmarks/robustness_shard/{experiment}_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # forward passes of the shard's images x noise draws
    params:
        stage="complexity",
        spec=complexity_spec("robustness_shard"),
        seed=SEED,
        code=script_hash("robustness_shard"),
    script:
        "../scripts/robustness_shard.py"


rule robustness:
    input:
        unpack(robustness_inputs),
    output:
        "results/{experiment}/complexity/robustness.h5",
    log:
        "logs/robustness/{experiment}.log",
    benchmark:
        "benchmarks/robustness/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=lambda wc: int(cx_shards() == 1),  # forward passes of images x noise draws; merging shards needs no GPU
    params:
        stage="complexity",
        spec=complexity_spec("robustness"),
        seed=SEED,
        code=script_hash("robustness"),
    script:
        "../scripts/robustness.py"


rule importance:
    input:
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        dictionary="results/{experiment}/complexity/dictionary.h5",
        checkpoint=experiment_model,
    output:
        "results/{experiment}/complexity/importance.h5",
    log:
        "logs/importance/{experiment}.log",
    benchmark:
        "benchmarks/importance/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # one (n, d) x (d, k) product per chunk and the readout's gradient
    params:
        stage="complexity",
        spec=complexity_spec("importance"),
        seed=SEED,
        code=script_hash("importance"),
    script:
        "../scripts/importance.py"


rule dictionary_quality:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
    output:
        csv="results/{experiment}/complexity/quality.csv",
        html=report(
            "results/{experiment}/complexity/quality.html",
            caption="../report/complexity_quality.rst",
            category="Complexity",
        ),
    log:
        "logs/dictionary_quality/{experiment}.log",
    benchmark:
        "benchmarks/dictionary_quality/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # one decoding pass over the split's codes
    params:
        stage="complexity",
        spec=complexity_spec("dictionary_quality"),
        seed=SEED,
        code=script_hash("dictionary_quality"),
    script:
        "../scripts/dictionary_quality.py"


rule feature_table:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        vinfo="results/{experiment}/complexity/vinfo.h5",
        redundancy="results/{experiment}/complexity/redundancy.h5",
        robustness="results/{experiment}/complexity/robustness.h5",
        importance="results/{experiment}/complexity/importance.h5",
    output:
        csv="results/{experiment}/complexity/features.csv",
        parquet="results/{experiment}/complexity/features.parquet",
        html=report(
            "results/{experiment}/complexity/features.html",
            caption="../report/complexity_feature_table.rst",
            category="Complexity",
        ),
    log:
        "logs/feature_table/{experiment}.log",
    benchmark:
        "benchmarks/feature_table/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # joins small arrays
    params:
        stage="complexity",
        spec=complexity_spec("feature_table"),
        seed=SEED,
        code=script_hash("feature_table"),
    script:
        "../scripts/feature_table.py"


rule complexity_figures:
    input:
        table="results/{experiment}/complexity/features.parquet",
        vinfo="results/{experiment}/complexity/vinfo.h5",
        dictionary="results/{experiment}/complexity/dictionary.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        data=experiment_data,
        robustness="results/{experiment}/complexity/robustness.h5",
        factors="results/{experiment}/complexity/factors.csv",
    output:
        importance=report(
            "results/{experiment}/complexity/figures/importance.png",
            caption="../report/complexity_importance.rst",
            category="Complexity",
            labels=figure_labels("importance"),
        ),
        iv_curves=report(
            "results/{experiment}/complexity/figures/iv_curves.png",
            caption="../report/complexity_iv_curves.rst",
            category="Complexity",
            labels=figure_labels("iv_curves"),
        ),
        relations=report(
            "results/{experiment}/complexity/figures/relations.png",
            caption="../report/complexity_relations.rst",
            category="Complexity",
            labels=figure_labels("relations"),
        ),
        umap=report(
            "results/{experiment}/complexity/figures/umap.png",
            caption="../report/complexity_umap.rst",
            category="Complexity",
            labels=figure_labels("umap"),
        ),
        top_images=report(
            "results/{experiment}/complexity/figures/top_images.png",
            caption="../report/complexity_top_images.rst",
            category="Complexity",
            labels=figure_labels("top_images"),
        ),
    log:
        "logs/complexity_figures/{experiment}.log",
    benchmark:
        "benchmarks/complexity_figures/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,  # UMAP of k atoms and plotting
    params:
        stage="complexity_plots",
        spec=complexity_spec("complexity_figures"),
        seed=SEED,
        code=script_hash("complexity_figures"),
    script:
        "../scripts/complexity_figures.py"


rule feature_pictures:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        vinfo="results/{experiment}/complexity/vinfo.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        data=experiment_data,
        checkpoint=experiment_model,
    output:
        h5="results/{experiment}/complexity/pictures.h5",
        table="results/{experiment}/complexity/pictures_parametrizations.csv",
        pictures=report(
            "results/{experiment}/complexity/figures/pictures.png",
            caption="../report/complexity_pictures.rst",
            category="Complexity",
            labels=figure_labels("pictures"),
        ),
    log:
        "logs/feature_pictures/{experiment}.log",
    benchmark:
        "benchmarks/feature_pictures/{experiment}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(experiment(wc.experiment)["model"])
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,  # batched forward/backward passes of the pictures through the network
    params:
        stage="fv",
        spec=complexity_spec("feature_pictures"),
        seed=SEED,
        code=script_hash("feature_pictures"),
    script:
        "../scripts/feature_pictures.py"


rule meta_features:
    input:
        dictionary="results/{experiment}/complexity/dictionary.h5",
        vinfo="results/{experiment}/complexity/vinfo.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        data=experiment_data,
    output:
        table="results/{experiment}/complexity/meta_features.csv",
        gallery=report(
            "results/{experiment}/complexity/figures/meta_features.png",
            caption="../report/complexity_meta_features.rst",
            category="Complexity",
            labels=figure_labels("gallery"),
        ),
    log:
        "logs/meta_features/{experiment}.log",
    benchmark:
        "benchmarks/meta_features/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # k-means of k atoms, one pass over the codes, plotting
    params:
        stage="complexity_plots",
        spec=complexity_spec("meta_features"),
        seed=SEED,
        code=script_hash("meta_features"),
    script:
        "../scripts/meta_features.py"


rule feature_flow:
    input:
        checkpoint=experiment_model,
        dictionary="results/{experiment}/complexity/dictionary.h5",
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
        activations=f"results/{{experiment}}/activations/{CX_SPLIT}.h5",
        data=experiment_data,
        vinfo="results/{experiment}/complexity/vinfo.h5",
        factors="results/{experiment}/complexity/factors.csv",
    output:
        h5="results/{experiment}/complexity/flow.h5",
        table="results/{experiment}/complexity/flow.csv",
        flow=report(
            "results/{experiment}/complexity/figures/flow.png",
            caption="../report/complexity_flow.rst",
            category="Complexity",
            labels=figure_labels("flow"),
        ),
    log:
        "logs/feature_flow/{experiment}.log",
    benchmark:
        "benchmarks/feature_flow/{experiment}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(experiment(wc.experiment)["model"])
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # batched forward passes of the split through the network, and NNLS codes of the ablated ones
    params:
        stage="complexity",
        spec=complexity_spec("feature_flow"),
        seed=SEED,
        code=script_hash("feature_flow"),
    script:
        "../scripts/feature_flow.py"
