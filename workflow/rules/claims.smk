# One verdict per claim of the papers (issue 25, SPEC 6): featflow.claims.registry plans every replicate (training
# seed) of every experiment a registered claim applies to and the files its readers take; one job reads them all.
#   results/claims.csv    claim, experiment, paper, statistic, value, spread, seeds, verdict, reason, figure
# Its inputs are the replicates' files, so adding a seed plans only that replicate's jobs and this one.
from featflow.claims.registry import inputs as claim_inputs, plan as claim_plan
from featflow.targets import CLAIMS as CLAIMS_CSV

CLAIM_UNITS = claim_plan(CFG)


rule claims:
    input:
        claim_inputs(CLAIM_UNITS),
    output:
        CLAIMS_CSV,
    log:
        "logs/claims/all.log",
    benchmark:
        "benchmarks/claims/all.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,  # reads tables and HDF5 files
    params:
        stage="claims",
        spec=CLAIM_UNITS,
        seed=SEED,
        code=script_hash("claims"),
    script:
        "../scripts/claims.py"
