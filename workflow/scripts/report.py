"""The HTML report from the pipeline's tables and PNGs (rule report); reads files only, diagnoses nothing."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.core.errors import one_line_errors  # noqa: E402 (after the log redirect)

with one_line_errors("report"):  # a corrupt run-folder file: one line, exit 2
    from ired.reporting.html_report import write_html_report

    out = write_html_report(
        snakemake.output.html,
        summary_csv=snakemake.input.summary,
        runs_csv=snakemake.input.runs,
        cross_eval_csv=snakemake.input.cross_eval,
        findings_md=snakemake.input.findings,
        plots=snakemake.input.plots,
        run_plots=snakemake.input.run_plots,
    )
print(f"{out}: {out.stat().st_size / 1e6:.2f} MB")
