# Stage 5, summary: every run folder (metrics, status, attempts) + the cross-eval table + the inference sweep ->
# the summary table (results/summary.csv for machines, results/summary.md for people), the per-run table
# results/runs.csv, and the findings generated from the summary (results/findings.md, the README's Findings block).
# Reads files only: deleting the summary and running `snakemake summary` trains nothing. The `summary` target
# also brings the plots and findings up to date (regenerating any that were deleted), still without training.


rule summary:
    input:
        table="results/summary.csv",
        findings="results/findings.md",
        ablation="results/plots/ablation.png",
        heatmap="results/plots/cross_eval.png",
        inference_sweep="results/plots/inference_sweep.png",
        curves=get_curves,


rule summary_table:
    input:
        finals=get_finals,
        cross_eval="results/cross_eval.csv",
        sweep="results/inference_sweep.csv",
    output:
        csv=report("results/summary.csv", caption="../report/summary.rst", category="Summary"),
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


rule findings:
    input:
        summary="results/summary.csv",
    output:
        md=report("results/findings.md", caption="../report/findings.rst", category="Summary"),
    log:
        "logs/findings.log",
    params:
        baseline=config["findings"]["baseline"],
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/findings.py"
