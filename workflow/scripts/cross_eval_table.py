"""Concatenate every evaluation JSON into results/cross_eval.csv (rule cross_eval)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.cross_eval import aggregate_cross_eval

table = aggregate_cross_eval(snakemake.input.evaluations, snakemake.output.table)
print(f"{len(table)} rows -> {snakemake.output.table}")
