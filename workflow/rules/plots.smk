# Stage 6, plots and report: training curves per run, the ablation bar chart (from the summary), the cross-eval
# heatmap per experiment, the inference-steps sweep, and the HTML report (from the tables and these PNGs; the
# per-run curves are linked, not embedded). Reads files only, never trains. report(): `snakemake --report`.


rule plot_curves:
    input:
        final="results/{run}/final.pt",
        cross_eval="results/cross_eval.csv",
    output:
        png=report(
            "results/plots/curves/{run}.png",
            caption="../report/curves.rst",
            category="Training curves",
            subcategory="{run}",
        ),
    log:
        "logs/plots/curves/{run}.log",
    params:
        run_dir=lambda wildcards, input: Path(input.final).parent,
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_curves.py"


rule plot_ablation:
    input:
        summary="results/summary.csv",
        runs="results/runs.csv",
    output:
        png=report("results/plots/ablation.png", caption="../report/ablation.rst", category="Ablations"),
    log:
        "logs/plots/ablation.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_ablation.py"


rule plot_cross_eval:
    input:
        table="results/cross_eval.csv",
        runs="results/runs.csv",
    output:
        png=report(
            "results/plots/cross_eval.png", caption="../report/cross_eval.rst", category="Cross-evaluation"
        ),
    log:
        "logs/plots/cross_eval.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_cross_eval.py"


rule plot_inference_sweep:
    input:
        table="results/inference_sweep.csv",
    output:
        png=report(
            "results/plots/inference_sweep.png",
            caption="../report/inference_sweep.rst",
            category="Landscape",
        ),
    log:
        "logs/plots/inference_sweep.log",
    params:
        experiments=get_sweep_plot_experiments(),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/plot_inference_sweep.py"


rule plots:
    input:
        curves=get_curves,
        ablation="results/plots/ablation.png",
        cross_eval="results/plots/cross_eval.png",
        inference_sweep="results/plots/inference_sweep.png",


rule report:
    input:
        summary="results/summary.csv",
        runs="results/runs.csv",
        cross_eval="results/cross_eval.csv",
        curves=get_curves,
        ablation="results/plots/ablation.png",
        heatmap="results/plots/cross_eval.png",
        sweep_png="results/plots/inference_sweep.png",
        findings="results/findings.md",
    output:
        html="results/report.html",
    log:
        "logs/report.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/report.py"
