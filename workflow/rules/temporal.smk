# Complexity over training (SPEC 1.7; Fel et al. 2024, Figs. 5-6): checkpoints of one training run (epoch 0: the
# untrained control), temporal decoding of the final dictionary's features from each checkpoint, sedimentation (one
# dictionary recipe at every trained epoch, the final model's included) and importance over training.
# Results path grammar (TX = results/{experiment}/temporal):
#   results/models/{model}/epoch_{epoch}.pt    the run of results/models/{model}.pt stopped after {epoch} epochs
#   TX/epoch_{epoch}/activations_{split}.h5     the experiment's layers from that checkpoint
#   TX/epoch_{epoch}/decoding.h5                I_V of the final features and planted factors from its layers
#   TX/epoch_{epoch}/sediment.h5                its own dictionary, codes' I_V, K and importance (epochs > 0, the
#                                               final one's from the final model's activations)
#   TX/temporal.h5, TX/emergence.csv|.parquet, TX/factors.csv, TX/sediment.csv|.parquet   curves, emergence epochs,
#                                               matched K and importance
#   TX/figures/{decoding,sedimentation,importance}.png
# One file per checkpoint: adding an epoch to train.checkpoints plans only that epoch's jobs.


include: "temporal_common.smk"


wildcard_constraints:
    epoch=r"\d+",


rule train_checkpoint:
    input:
        data=lambda wc: f"results/data/{CFG['models'][wc.model]['dataset']}.h5",
    output:
        "results/models/{model}/epoch_{epoch}.pt",
    log:
        "logs/train_checkpoint/{model}_{epoch}.log",
    benchmark:
        "benchmarks/train_checkpoint/{model}_{epoch}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(wc.model)
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,  # the training run up to this epoch
    params:
        stage="train",
        spec=lambda wc: trained_spec(wc.model),
        seed=SEED,
        code=script_hash("train_checkpoint"),
    script:
        "../scripts/train_checkpoint.py"


rule checkpoint_activations:
    input:
        checkpoint=lambda wc: f"results/models/{experiment(wc.experiment)['model']}/epoch_{wc.epoch}.pt",
        data=experiment_data,
    output:
        "results/{experiment}/temporal/epoch_{epoch}/activations_{split}.h5",
    log:
        "logs/checkpoint_activations/{experiment}_{epoch}_{split}.log",
    benchmark:
        "benchmarks/checkpoint_activations/{experiment}_{epoch}_{split}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,  # batched forward passes through the checkpoint
    params:
        stage="activations",
        spec=lambda wc: experiment_spec(wc.experiment),
        seed=SEED,
        code=script_hash("checkpoint_activations"),
    script:
        "../scripts/checkpoint_activations.py"


rule temporal_decoding:
    input:
        activations=tx_activations(CX_SPLIT),
        codes=f"results/{{experiment}}/complexity/codes_{CX_SPLIT}.h5",
    output:
        "results/{experiment}/temporal/epoch_{epoch}/decoding.h5",
    log:
        "logs/temporal_decoding/{experiment}_{epoch}.log",
    benchmark:
        "benchmarks/temporal_decoding/{experiment}_{epoch}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # one small float64 factorization per layer
    params:
        stage="temporal",
        spec=lambda wc: tx_spec(wc, ("split", "vinfo")),
        seed=SEED,
        code=script_hash("temporal_decoding"),
    script:
        "../scripts/temporal_decoding.py"


rule sediment:
    input:
        train=tx_activations("train"),
        test=tx_activations(CX_SPLIT),
        data=experiment_data,
        checkpoint=tx_checkpoint,
    output:
        "results/{experiment}/temporal/epoch_{epoch}/sediment.h5",
    log:
        "logs/sediment/{experiment}_{epoch}.log",
    benchmark:
        "benchmarks/sediment/{experiment}_{epoch}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,  # NMF iterations and batched NNLS: matrix products
    params:
        stage="temporal",
        spec=lambda wc: tx_spec(wc, ("split", "vinfo", "dictionary"), ("sediment",), layers=True),
        seed=SEED,
        code=script_hash("sediment"),
    script:
        "../scripts/sediment.py"


rule temporal:
    input:
        decoding=lambda wc: [
            f"results/{wc.experiment}/temporal/epoch_{e}/decoding.h5" for e in tx_epochs(wc.experiment)
        ],
        sediment=lambda wc: [
            f"results/{wc.experiment}/temporal/epoch_{e}/sediment.h5" for e in tx_sediment_epochs(wc.experiment)
        ],
        vinfo="results/{experiment}/complexity/vinfo.h5",
        dictionary="results/{experiment}/complexity/dictionary.h5",
        factors="results/{experiment}/complexity/factors.csv",
    output:
        h5="results/{experiment}/temporal/temporal.h5",
        csv="results/{experiment}/temporal/emergence.csv",
        parquet="results/{experiment}/temporal/emergence.parquet",
        factors="results/{experiment}/temporal/factors.csv",
        sediment_csv="results/{experiment}/temporal/sediment.csv",
        sediment_parquet="results/{experiment}/temporal/sediment.parquet",
    log:
        "logs/temporal/{experiment}.log",
    benchmark:
        "benchmarks/temporal/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # Hungarian assignments of small cosine matrices
    params:
        stage="temporal",
        spec=lambda wc: tx_spec(wc, (), ("fraction", "min_gain", "layer", "sediment")),
        seed=SEED,
        code=script_hash("temporal"),
    script:
        "../scripts/temporal.py"


rule temporal_figures:
    input:
        temporal="results/{experiment}/temporal/temporal.h5",
        factors="results/{experiment}/temporal/factors.csv",
    output:
        decoding=report(
            "results/{experiment}/temporal/figures/decoding.png",
            caption="../report/temporal_decoding.rst",
            category="Complexity over training",
            labels=figure_labels("decoding"),
        ),
        sedimentation=report(
            "results/{experiment}/temporal/figures/sedimentation.png",
            caption="../report/temporal_sedimentation.rst",
            category="Complexity over training",
            labels=figure_labels("sedimentation"),
        ),
        importance=report(
            "results/{experiment}/temporal/figures/importance.png",
            caption="../report/temporal_importance.rst",
            category="Complexity over training",
            labels=figure_labels("importance"),
        ),
    log:
        "logs/temporal_figures/{experiment}.log",
    benchmark:
        "benchmarks/temporal_figures/{experiment}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,  # plotting
    params:
        stage="temporal_plots",
        spec={},
        seed=SEED,
        code=script_hash("temporal_figures"),
    script:
        "../scripts/temporal_figures.py"
