rule data:
    output:
        "results/data/{dataset}.h5",
    log:
        "logs/data/{dataset}.log",
    params:
        stage="data",
        spec=lambda wc: CFG["datasets"][wc.dataset],
        seed=SEED,
        code=code_version("data"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,  # generation and file reads only
    conda:
        ENV
    script:
        "../scripts/data.py"
