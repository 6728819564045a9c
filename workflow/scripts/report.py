"""One self-contained HTML report: findings, summary, plots, each run's findings and resolved config (rule report)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.errors import one_line_errors

with one_line_errors("report"):  # a corrupt run-folder file: one line, exit 2
    from ired.report import write_html_report

    curves = {spec["run_id"]: png for spec, png in zip(snakemake.params.runs, snakemake.input.curves)}
    write_html_report(
        snakemake.params.runs,
        snakemake.input.cross_eval,
        snakemake.output.html,
        curves=curves,
        sweep_csv=snakemake.input.sweep,
        findings_md=snakemake.input.findings,
        sweep_experiments=snakemake.params.sweep_experiments,
    )
