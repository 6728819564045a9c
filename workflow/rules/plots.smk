# Stage 6, plots and report: training curves per run, the ablation bar chart (from the summary), the cross-eval
# heatmap per experiment, the inference-steps sweep, and the HTML report (from the tables and these PNGs; the
# per-run curves are linked, not embedded). Reads files only, never trains. report(): `snakemake --report`.


rule plot_curves:
    input:
        final=f"{OUT}/{{run}}/final.pt",
        cross_eval=f"{OUT}/cross_eval.csv",
    output:
        png=report(
            f"{OUT}/plots/curves/{{run}}.png",
            caption="../report/curves.rst",
            category="Training curves",
            subcategory="{run}",
        ),
    log:
        f"{LOGS}/plots/curves/{{run}}.log",
    params:
        run_dir=lambda wildcards, input: Path(input.final).parent,
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_curves.py"


rule plot_ablation:
    input:
        summary=f"{OUT}/summary.csv",
        runs=f"{OUT}/runs.csv",
    output:
        png=report(f"{OUT}/plots/ablation.png", caption="../report/ablation.rst", category="Ablations"),
    log:
        f"{LOGS}/plots/ablation.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_ablation.py"


rule plot_cross_eval:
    input:
        table=f"{OUT}/cross_eval.csv",
        runs=f"{OUT}/runs.csv",
    output:
        png=report(
            f"{OUT}/plots/cross_eval.png", caption="../report/cross_eval.rst", category="Cross-evaluation"
        ),
    log:
        f"{LOGS}/plots/cross_eval.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_cross_eval.py"


rule plot_inference_sweep:
    input:
        table=f"{OUT}/inference_sweep.csv",
    output:
        png=report(
            f"{OUT}/plots/inference_sweep.png",
            caption="../report/inference_sweep.rst",
            category="Landscape",
        ),
    log:
        f"{LOGS}/plots/inference_sweep.log",
    params:
        experiments=get_sweep_plot_experiments(),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_inference_sweep.py"


rule plots:
    input:
        curves=get_curves,
        ablation=f"{OUT}/plots/ablation.png",
        cross_eval=f"{OUT}/plots/cross_eval.png",
        inference_sweep=f"{OUT}/plots/inference_sweep.png",


rule report:
    input:
        summary=f"{OUT}/summary.csv",
        runs=f"{OUT}/runs.csv",
        cross_eval=f"{OUT}/cross_eval.csv",
        curves=get_curves,
        ablation=f"{OUT}/plots/ablation.png",
        heatmap=f"{OUT}/plots/cross_eval.png",
        sweep_png=f"{OUT}/plots/inference_sweep.png",
        findings=f"{OUT}/findings.md",
    output:
        html=f"{OUT}/report.html",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/report.py"
