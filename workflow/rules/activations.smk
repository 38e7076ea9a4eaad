rule activations:
    input:
        checkpoint=lambda wc: f"results/models/{experiment(wc.experiment)['model']}.pt",
        data=lambda wc: f"results/data/{experiment(wc.experiment)['dataset']}.h5",
    output:
        "results/{experiment}/activations/{split}.h5",
    log:
        "logs/activations/{experiment}_{split}.log",
    benchmark:
        "benchmarks/activations/{experiment}_{split}.tsv"
    params:
        stage="activations",
        spec=lambda wc: experiment(wc.experiment),
        seed=SEED,
        code=code_version("activations"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,  # batched forward passes through the network
    conda:
        ENV
    script:
        "../scripts/activations.py"


TARGETS += [
    f"results/{name}/activations/{split}.h5"
    for name, exp in CFG["experiments"].items()
    for split in exp["activations"]["splits"]
]
