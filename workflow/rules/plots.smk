# Stage 6, plots and report: one rule plot_<name> per entry of ired.plots.PLOTS (training curves per run, the
# ablation bars, the parameter sweeps, the cross-eval heatmap, the inference-steps sweep), each drawn from the
# tables it declares (summary.csv, runs.csv, cross_eval.csv, inference_sweep.csv: the diagnosis of every run is in
# runs.csv), and the HTML report from the tables and these PNGs (per-experiment plots embedded, per-run plots
# linked). Reads files only, never trains. report(): `snakemake --report`, with each plot's caption from its entry.
# Adding a plot: its function and its entry in ired.plots.PLOTS (docs/ARCHITECTURE.md); nothing here changes.

from ired.plots import PLOTS, TABLES

# Keyword arguments of a plot's function taken from the pipeline config (by plot name).
PLOT_OPTIONS = {"inference_sweep": {"experiments": get_sweep_plot_experiments()}}


def plot_files(plot):
    """The PNGs of one registered plot: results/<scale>/plots/<name>.png, or one per training run."""
    return [f"{OUT}/{plot.path(run)}" for run in RUNS] if plot.per_run else [f"{OUT}/{plot.path()}"]


def get_plot_files(wildcards=None):
    """Every PNG of every registered plot."""
    return [path for plot in PLOTS for path in plot_files(plot)]


def get_run_plot_files(wildcards=None):
    """The per-run PNGs (linked from the report's run table)."""
    return [path for plot in PLOTS if plot.per_run for path in plot_files(plot)]


def _caption(plot):
    """The plot's caption for Snakemake's report (workflow/report/plot.rst renders it), `{run}` filled in."""
    return lambda wildcards: plot.caption.replace("{run}", getattr(wildcards, "run", "{run}"))


def _run_dir(plot):
    return lambda wildcards: f"{OUT}/{wildcards.run}" if plot.per_run else ""


for _plot in PLOTS:

    rule:
        name:
            f"plot_{_plot.name}"
        input:
            **({"final": f"{OUT}/{{run}}/final.pt"} if _plot.per_run else {}),
            **{table: f"{OUT}/{TABLES[table]}" for table in _plot.inputs},
        output:
            png=report(
                f"{OUT}/{_plot.path('{run}') if _plot.per_run else _plot.path()}",
                caption="../report/plot.rst",
                category=_plot.category,
                subcategory="{run}" if _plot.per_run else None,
            ),
        log:
            f"{LOGS}/plots/{_plot.name}{'/{run}' if _plot.per_run else ''}.log",
        params:
            plot=_plot.name,
            caption=_caption(_plot),
            run_dir=_run_dir(_plot),
            options=PLOT_OPTIONS.get(_plot.name, {}),
        wildcard_constraints:
            **({"run": alternatives(RUNS)} if _plot.per_run else {}),
        conda:
            "../envs/ired.yaml"
        script:
            "../scripts/plot.py"


rule plots:
    input:
        get_plot_files,


rule report:
    input:
        summary=f"{OUT}/summary.csv",
        runs=f"{OUT}/runs.csv",
        cross_eval=f"{OUT}/cross_eval.csv",
        findings=f"{OUT}/findings.md",
        plots=[f"{OUT}/{plot.path()}" for plot in PLOTS if plot.section is not None],
        run_plots=get_run_plot_files,
    output:
        html=f"{OUT}/report.html",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/report.py"
