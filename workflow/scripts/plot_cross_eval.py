"""The per-experiment cross-eval heatmap from results/cross_eval.csv and results/runs.csv (rule plot_cross_eval)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.plots import plot_cross_eval_heatmap

plot_cross_eval_heatmap(snakemake.input.table, snakemake.output.png, snakemake.input.runs)
