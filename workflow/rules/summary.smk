# Stage 5, summary: every run folder (metrics, status, attempts) + the cross-eval table + the inference sweep ->
# the summary table (results/summary.csv for machines, results/summary.md for people; columns: ired.reporting.columns), the
# per-run table results/runs.csv (each run diagnosed once, here: the plots and the report read its diagnosis), and
# the findings generated from the summary (results/findings.md, the README's Findings block).
# Reads files only: deleting the summary and running `snakemake summary` trains nothing. The `summary` target
# also brings the plots and findings up to date (regenerating any that were deleted), still without training.


rule summary:
    input:
        table=f"{OUT}/summary.csv",
        findings=f"{OUT}/findings.md",
        plots=lambda wildcards: plot_files(OUT, RUNS),  # every registered plot (ired.reporting.plots.PLOTS)


rule summary_table:
    input:
        finals=get_finals,
        cross_eval=f"{OUT}/cross_eval.csv",
        sweep=f"{OUT}/inference_sweep.csv",
    output:
        csv=report(f"{OUT}/summary.csv", caption="../report/summary.rst", category="Summary"),
        md=f"{OUT}/summary.md",
        runs=f"{OUT}/runs.csv",
    log:
        f"{LOGS}/summary.log",
    params:
        runs=get_run_specs(),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/summary.py"


rule findings:
    input:
        summary=f"{OUT}/summary.csv",
    output:
        md=report(f"{OUT}/findings.md", caption="../report/findings.rst", category="Summary"),
    log:
        f"{LOGS}/findings.log",
    params:
        baseline=config["findings"]["baseline"],
        scale=config["scale"],  # the README block's markers name the scale
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/findings.py"
