"""Concatenate every run's inference sweep into results/inference_sweep.csv (rule inference_sweep_table)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.reporting.inference_sweep import aggregate_sweeps  # noqa: E402 (after the log redirect)

table = aggregate_sweeps(snakemake.input.sweeps, snakemake.output.table)
print(f"{len(table)} rows -> {snakemake.output.table}")
