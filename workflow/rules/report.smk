# The report's landing page (SPEC 5.4): every report figure's headline numbers, read from the PNG metadata that
# featflow.store.save_figure wrote, gathered into one table grouped by branch (featflow.targets.figures: every
# enabled branch's figures), below the verdict per claim of the papers (results/claims.csv, rule claims); the
# Snakefile's `report:` directive shows results/summary.rst.
SUMMARY_FIGURES = figures(CFG)


rule summary:
    input:
        figures=SUMMARY_FIGURES,
        claims=CLAIMS_CSV,  # the verdict per claim heads the page (workflow/rules/claims.smk)
        quality=quality_tables(TARGETS),  # the dictionary quality table, one row per dictionary
    output:
        rst="results/summary.rst",
        csv="results/summary.csv",
    log:
        "logs/summary/all.log",
    benchmark:
        "benchmarks/summary/all.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
        gpu=0,  # reads PNG metadata
    params:
        stage="summary",
        spec={},
        seed=SEED,
        code=script_hash("summary"),
    script:
        "../scripts/summary.py"
