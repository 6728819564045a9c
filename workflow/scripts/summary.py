"""The summary table from the run folders and the cross-eval table (rule summary); reads files only."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.summary import write_summary

summary = write_summary(
    snakemake.params.runs,
    snakemake.input.cross_eval,
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.output.runs,
    sweep_csv=snakemake.input.sweep,
)
print(summary.to_string())
