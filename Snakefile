# ired: experiments as data, from training to the summary table. Everyday commands: docs/PIPELINE.md.
# This file is a table of contents; the stages live in workflow/rules/, in dataflow order.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"  # validation of config/, the scale (results/<scale>/), get_* helpers
include: "workflow/rules/resolve.smk"  # experiments -> results/<scale>/<run>/config.yaml (a job; parsing writes nothing)
include: "workflow/rules/train.smk"  # run config -> the run folder results/<scale>/<run>/ (final.pt declared)
include: "workflow/rules/hooks.smk"  # remember the scale; at the end, list failed runs and how to rerun each
include: "workflow/rules/evaluate.smk"  # one job per run: milestones, their cross-evaluation, the inference sweep
include: "workflow/rules/cross_eval.smk"  # every evaluation JSON (checkpoint x protocol x split x weights) -> cross_eval.csv
include: "workflow/rules/inference_sweep.smk"  # every run's inference-steps sweep JSON -> inference_sweep.csv
include: "workflow/rules/summary.smk"  # runs + cross-eval + sweep -> summary.csv / .md / runs.csv, findings.md
include: "workflow/rules/plots.smk"  # every plot of ired.reporting.plots.PLOTS (one rule each), report.html


rule all_ablations:
    default_target: True
    input:
        cross_eval=rules.cross_eval.output,
        inference_sweep=rules.inference_sweep_table.output,
        summary=rules.summary_table.output,
        findings=rules.findings.output,
        plots=lambda wildcards: plot_files(OUT, RUNS),
        report=rules.report.output,


# One target per experiment id (`snakemake q208`): the evaluation of each of its runs (evaluate.smk: milestones,
# their cross-evaluations, the inference sweep). The points of a sweep have no target of their own (their names are not rule names): their sweep has one.
for experiment in EXPERIMENTS:
    if REGISTRY.experiments[experiment].sweep is None:

        rule:
            name:
                experiment
            input:
                get_experiment_targets(experiment),


# One target per sweep of the registry (`snakemake lr_temp`), selected or not: the same for all of its runs.
for sweep in SWEEPS:

    rule:
        name:
            sweep
        input:
            get_sweep_targets(sweep),
