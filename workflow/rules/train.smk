def trained_spec(model):
    """What a training run reads of a model: its config entry without train.checkpoints (which epochs are saved
    along the way changes no run: adding one trains only that checkpoint, workflow/rules/temporal.smk)."""
    spec = dict(CFG["models"][model])
    spec["train"] = {k: v for k, v in spec["train"].items() if k != "checkpoints"}
    return spec


rule train:
    input:
        data=lambda wc: f"results/data/{CFG['models'][wc.model]['dataset']}.h5",
    output:
        "results/models/{model}.pt",
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,  # SGD over the whole training set: worth an accelerator when there is one
    params:
        stage="train",
        spec=lambda wc: trained_spec(wc.model),
        seed=SEED,
        code=script_hash("train"),
    script:
        "../scripts/train.py"
