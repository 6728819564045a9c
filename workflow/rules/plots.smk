# Stage 6, plots and report: one rule plot_<name> per entry of ired.reporting.plots.PLOTS (training curves per run, the
# ablation bars, the parameter sweeps, the cross-eval heatmap, the inference-steps sweep), each drawn from the
# tables it declares (summary.csv, runs.csv, cross_eval.csv, inference_sweep.csv: the diagnosis of every run is in
# runs.csv), and the HTML report from the tables and these PNGs (per-experiment plots embedded, per-run plots
# linked). Reads files only, never trains. report(): `snakemake --report`, with each plot's caption from its entry
# (workflow/report/plot.rst). Adding a plot: its function and its entry in ired.reporting.plots.PLOTS (docs/ARCHITECTURE.md);
# nothing here changes.

from ired.reporting.plots import PLOTS, TABLES, plot_files

# Keyword arguments of a plot's function taken from the pipeline config (by plot name).
PLOT_OPTIONS = {"inference_sweep": {"experiments": get_sweep_plot_experiments()}}


for _plot in PLOTS:

    rule:
        name:
            f"plot_{_plot.name}"
        input:
            **({"final": f"{RUN.final}"} if _plot.per_run else {}),
            **{table: f"{OUT}/{TABLES[table]}" for table in _plot.inputs},
        output:
            png=report(
                f"{OUT}/{_plot.path('{run}')}",
                caption="../report/plot.rst",
                category=_plot.category,
                subcategory="{run}" if _plot.per_run else None,
            ),
        log:
            f"{LOGS}/{_plot.path('{run}', suffix='.log')}",
        params:
            plot=_plot.name,
            caption=lambda wildcards, plot=_plot: plot.caption_for(getattr(wildcards, "run", None)),
            run_dir=lambda wildcards, input, plot=_plot: str(Path(input.final).parent) if plot.per_run else "",
            options=PLOT_OPTIONS.get(_plot.name, {}),
        wildcard_constraints:
            **({"run": alternatives(RUNS)} if _plot.per_run else {}),
        conda:
            "../envs/ired.yaml"
        script:
            "../scripts/plot.py"


rule plots:
    input:
        lambda wildcards: plot_files(OUT, RUNS),


rule report:
    input:
        summary=f"{OUT}/summary.csv",
        runs=f"{OUT}/runs.csv",
        cross_eval=f"{OUT}/cross_eval.csv",
        findings=f"{OUT}/findings.md",
        plots=[f"{OUT}/{plot.path()}" for plot in PLOTS if plot.section is not None],
        run_plots=lambda wildcards: plot_files(OUT, RUNS, per_run=True),
    output:
        html=f"{OUT}/report.html",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/report.py"
