"""The summary table from the run folders and the cross-eval table (rule summary); reads files only."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.core.errors import one_line_errors  # noqa: E402 (after the log redirect)

with one_line_errors("summary"):  # a corrupt run-folder file: one line, exit 2
    from ired.reporting.summary import write_summary

    summary = write_summary(
        snakemake.params.runs,
        snakemake.input.cross_eval,
        snakemake.output.csv,
        snakemake.output.md,
        snakemake.output.runs,
        sweep_csv=snakemake.input.sweep,
    )
    print(summary.to_string())
