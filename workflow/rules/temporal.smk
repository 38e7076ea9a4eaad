# Complexity over training (SPEC 1.7; Fel et al. 2024, Fig. 5): checkpoints of one training run, temporal decoding
# of the final dictionary's features from each checkpoint, sedimentation (a dictionary per checkpoint).
# Results path grammar (TX = results/{experiment}/temporal):
#   results/models/{model}/epoch_{epoch}.pt    the run of results/models/{model}.pt stopped after {epoch} epochs
#   TX/epoch_{epoch}/activations_{split}.h5     the experiment's layers from that checkpoint
#   TX/epoch_{epoch}/decoding.h5                I_V of the final features and planted factors from its layers
#   TX/epoch_{epoch}/sediment.h5                its own dictionary, codes' I_V and K
#   TX/temporal.h5, TX/emergence.csv|.parquet, TX/factors.csv   curves, emergence epochs, matched K
#   TX/figures/{decoding,sedimentation}.png
# One file per checkpoint: adding an epoch to train.checkpoints plans only that epoch's jobs.


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
    threads: 2
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
