"""The ablation bar chart from the summary and per-run tables (rule plot_ablation)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.plots import plot_ablation

plot_ablation(snakemake.input.summary, snakemake.output.png, snakemake.input.runs)
