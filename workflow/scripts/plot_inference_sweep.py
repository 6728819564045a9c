"""Task MSE, rejected share and energy monotonicity against inference steps per level (rule plot_inference_sweep)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.plots import plot_inference_sweep

plot_inference_sweep(snakemake.input.table, snakemake.output.png, snakemake.params.experiments)
