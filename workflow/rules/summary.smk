# Stage 5, summary: every run folder (metrics, status, attempts) + the cross-eval table -> the summary table
# (results/summary.csv for machines, results/summary.md for people) and the per-run table results/runs.csv.
# Reads files only: deleting the summary and running `snakemake summary` trains nothing.


rule summary:
    input:
        finals=get_finals,
        cross_eval="results/cross_eval.csv",
    output:
        csv=report("results/summary.csv", category="Summary"),
        md="results/summary.md",
        runs="results/runs.csv",
    log:
        "logs/summary.log",
    params:
        runs=get_run_specs(),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/summary.py"
