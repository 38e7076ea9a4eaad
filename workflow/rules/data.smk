def data_sources(wc):
    """The idx files an idx data set reads (a changed file reruns its data job); folder kinds are indexed by path."""
    from featflow import idx

    spec = CFG["datasets"][wc.dataset]
    if spec["kind"] != "idx":
        return []
    folder = spec.get("path") or idx.shipped_folder()
    found = (idx.find(folder, s, k) for s in idx.SPLIT_PREFIX for k in idx.KINDS)
    return [str(f) for f in found if f is not None]


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
