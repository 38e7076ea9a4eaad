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
    threads: lambda wc: model_threads(wc.model)
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
