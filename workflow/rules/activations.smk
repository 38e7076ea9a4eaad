# Paths: results/{experiment}/activations/{split}.h5 (the merged file every downstream rule reads);
#        results/{experiment}/activations/shards/{split}_{shard}.h5 (temporary slices when activations.shards > 1).


rule activations_shard:
    input:
        checkpoint=lambda wc: f"results/models/{experiment(wc.experiment)['model']}.pt",
        data=lambda wc: f"results/data/{experiment(wc.experiment)['dataset']}.h5",
    output:
        temp("results/{experiment}/activations/shards/{split}_{shard}.h5"),
    log:
        "logs/activations_shard/{experiment}_{split}_{shard}.log",
    benchmark:
        "benchmarks/activations_shard/{experiment}_{split}_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV
    threads: lambda wc: model_threads(experiment(wc.experiment)["model"])
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,  # batched forward passes through the network
    params:
        stage="activations",
        spec=lambda wc: experiment_spec(wc.experiment),
        seed=SEED,
        code=script_hash("activations_shard"),
    script:
        "../scripts/activations_shard.py"


rule activations:
    input:
        unpack(activations_inputs),
    output:
        "results/{experiment}/activations/{split}.h5",
    log:
        "logs/activations/{experiment}_{split}.log",
    benchmark:
        "benchmarks/activations/{experiment}_{split}.tsv"
    conda:
        ENV
    threads: lambda wc: model_threads(experiment(wc.experiment)["model"])
    resources:
        mem_mb=8000,
        runtime=60,
        # batched forward passes through the network; merging shards needs no GPU
        gpu=lambda wc: int(experiment(wc.experiment)["activations"]["shards"] == 1),
    params:
        stage="activations",
        spec=lambda wc: experiment_spec(wc.experiment),
        seed=SEED,
        code=script_hash("activations"),
    script:
        "../scripts/activations.py"
