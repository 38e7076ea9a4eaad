rule data:
    input:
        data_sources,
    output:
        "results/data/{dataset}.h5",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,  # generation and file reads only
    params:
        stage="data",
        spec=lambda wc: CFG["datasets"][wc.dataset],
        seed=SEED,
        code=script_hash("data"),
    script:
        "../scripts/data.py"
